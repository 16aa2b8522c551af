"""The gymnasium family, on the host: ``load("Pendulum-v1")`` for ``--env gymnasium:Pendulum-v1``.

Gymnasium environments are not JAX: they step in Python (:mod:`jaxmbrl.envs.host`), while
the model and the planner stay compiled. :func:`load` returns the environment layer's
``(EnvSpec, HostEnvironment)``: the spec from gymnasium's spaces (a ``Box`` observation,
flattened to ``[O]``; ``Box`` or ``Discrete`` actions), the episode length from the
registered time limit unless overridden, and one :class:`GymnasiumEnv` per seed.

Known rewards: gymnasium's ``Pendulum-v1`` has gymnax's reward on observations
(:func:`jaxmbrl.envs.reward_fns.known_functions`; the tests check it on gymnasium's own
transitions). Every other task learns its reward.
"""

from __future__ import annotations

import functools
import math

import gymnasium
import numpy as np
from gymnax.environments.classic_control.pendulum import EnvParams as PendulumParams

from jaxmbrl.envs.host import HostEnvironment, uniform_action
from jaxmbrl.envs.reward_fns import known_functions
from jaxmbrl.envs.spec import EnvSpec
from jaxmbrl.types import ActionSpace, RewardFn, TerminationFn

PREFIX = "gymnasium:"


def _pendulum(env: gymnasium.Env) -> tuple[RewardFn | None, TerminationFn | None]:
    params = PendulumParams(max_torque=float(env.unwrapped.max_torque))
    return known_functions("Pendulum-v1", params)


# Gymnasium ids whose reward and termination on observations equal a gymnax function's.
_KNOWN = {"Pendulum-v1": _pendulum}


class GymnasiumEnv:
    """A gymnasium environment as a :class:`~jaxmbrl.envs.host.HostEnv`.

    Observations come back flat, ``[O] float32``; a ``[A] float32`` action is reshaped to
    the ``Box``'s shape and dtype, a ``[] int32`` index ``i`` becomes ``start + i`` of the
    ``Discrete`` space. The time limit is the episode length, so gymnasium never truncates
    an episode before the loop ends it.
    """

    def __init__(self, env_id: str, episode_length: int):
        self._env = gymnasium.make(env_id, max_episode_steps=episode_length)
        self._space = self._env.action_space

    def reset(self, seed: int) -> np.ndarray:
        obs, _ = self._env.reset(seed=int(seed))
        return np.asarray(obs, np.float32).reshape(-1)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        if isinstance(self._space, gymnasium.spaces.Discrete):
            action = int(self._space.start) + int(action)
        else:
            action = np.asarray(action, self._space.dtype).reshape(self._space.shape)
        obs, reward, terminated, truncated, _ = self._env.step(action)
        return (
            np.asarray(obs, np.float32).reshape(-1),
            float(reward),
            bool(terminated),
            bool(truncated),
        )

    def close(self) -> None:
        self._env.close()


def action_space(space: gymnasium.Space) -> ActionSpace:
    """A gymnasium ``Box`` or ``Discrete`` space as the library's :class:`ActionSpace`
    (a box's bounds flattened to ``A`` floats)."""
    if isinstance(space, gymnasium.spaces.Discrete):
        return ActionSpace.discrete(int(space.n))
    if isinstance(space, gymnasium.spaces.Box):
        low = np.asarray(space.low, np.float64).reshape(-1)
        high = np.asarray(space.high, np.float64).reshape(-1)
        return ActionSpace.box([float(v) for v in low], [float(v) for v in high])
    raise ValueError(f"unsupported action space {type(space).__name__} (Box or Discrete only)")


def _make(env_id: str) -> gymnasium.Env:
    """``gymnasium.make(env_id)``; an unknown id or a missing dependency as a one-line
    ``ValueError``."""
    try:
        return gymnasium.make(env_id)
    except (gymnasium.error.Error, ImportError) as e:
        reason = " ".join(str(e).split())  # gymnasium's message, on one line
        raise ValueError(f"gymnasium environment {env_id!r} cannot be made: {reason}") from None


def load(env_id: str, episode_length: int | None = None) -> tuple[EnvSpec, HostEnvironment]:
    """Load gymnasium environment ``env_id`` as ``(EnvSpec, HostEnvironment)``.

    Args:
      env_id: a registered gymnasium id (``"Pendulum-v1"``, ``"HalfCheetah-v5"``), without
        the ``gymnasium:`` prefix.
      episode_length: ``T``, overriding the registered time limit (required when there is
        none).

    Returns:
      The spec (named ``"gymnasium:<env_id>"``) and the host environment, whose ``make()``
      builds one :class:`GymnasiumEnv` with time limit ``T``.

    Raises:
      ValueError: an unknown id or a missing dependency (gymnasium's reason, one line), an
        observation space that is not a ``Box``, an action space that is neither ``Box`` nor
        ``Discrete``, or no episode length.
    """
    env = _make(env_id)
    try:
        obs_space = env.observation_space
        if not isinstance(obs_space, gymnasium.spaces.Box):
            raise ValueError(
                f"gymnasium environment {env_id!r} has a {type(obs_space).__name__} observation "
                "space; only Box observations are supported"
            )
        length = episode_length or (env.spec.max_episode_steps if env.spec else None)
        if length is None:
            raise ValueError(
                f"gymnasium environment {env_id!r} has no time limit; give an episode length"
            )
        spec = EnvSpec(
            name=PREFIX + env_id,
            obs_dim=int(math.prod(obs_space.shape)),
            action=action_space(env.action_space),
            episode_length=int(length),
        )
        reward_fn, termination_fn = _KNOWN[env_id](env) if env_id in _KNOWN else (None, None)
    finally:
        env.close()
    host = HostEnvironment(
        make=functools.partial(GymnasiumEnv, env_id, spec.episode_length),
        sample_action=uniform_action(spec.action),
        reward_fn=reward_fn,
        termination_fn=termination_fn,
    )
    return spec, host


__all__ = ["PREFIX", "GymnasiumEnv", "action_space", "load"]
