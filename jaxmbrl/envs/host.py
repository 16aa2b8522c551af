"""Environments that step on the host (Python, not JAX): a simulator, a real robot, gymnasium.

Beside :class:`~jaxmbrl.envs.spec.EnvSpec` and :class:`~jaxmbrl.envs.spec.Environment`, the
environment layer's record for an environment that is not JAX: a :class:`HostEnvironment`
makes :class:`HostEnv` instances (one per seed) that reset and step in Python, and carries
the JAX-side functions planning needs (random actions, a known reward and termination on
observations). Its dynamics cannot be traced, so there is no true-dynamics ("oracle")
objective. The MPC step still plans in one compiled call per real step for all seeds
(:func:`jaxmbrl.mpc.host_episode`). One adapter builds it per family
(:func:`jaxmbrl.envs.gymnasium_adapter.load` for gymnasium).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.types import ActionSpace, Array, PRNGKey, RewardFn, TerminationFn


class HostEnv(Protocol):
    """One environment instance stepped in Python (a gymnasium env, a robot's driver).

    Observations are ``[O]`` float32 NumPy arrays; an action is ``[A] float32`` (a box) or
    ``[] int32`` (discrete, an index ``0..D-1``) as the planner returns it.
    """

    def reset(self, seed: int) -> np.ndarray:
        """Start an episode from ``seed`` (a non-negative int): the first observation ``[O]``."""
        ...

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        """Act: ``(next_obs [O], reward, terminated, truncated)``."""
        ...

    def close(self) -> None:
        """Release the instance's resources."""
        ...


class HostEnvironment(NamedTuple):
    """An environment that steps on the host (functions only; no true dynamics).

    Attributes:
      make: ``() -> HostEnv``: a new instance (one per seed).
      sample_action: ``key -> action``, uniform over the action space (a JAX function: the
        random episodes draw their actions in the compiled step).
      reward_fn: the known reward ``(obs [O], action, next_obs [O]) -> [] float32`` on
        observations, or ``None`` (then a model must learn it).
      termination_fn: the known termination ``(obs, action, next_obs) -> [] bool``, or
        ``None``.
    """

    make: Callable[[], HostEnv]
    sample_action: Callable[[PRNGKey], Array]
    reward_fn: RewardFn | None = None
    termination_fn: TerminationFn | None = None


def uniform_action(action: ActionSpace) -> Callable[[PRNGKey], Array]:
    """``key -> action``: uniform in the box (``[A] float32``) or over ``0..D-1``
    (``[] int32``)."""
    if action.is_discrete:
        return lambda key: jax.random.randint(key, (), 0, action.num_actions, jnp.int32)
    low = jnp.asarray(action.low, jnp.float32)
    high = jnp.asarray(action.high, jnp.float32)
    return lambda key: jax.random.uniform(key, low.shape, jnp.float32, low, high)


def steps_on_host(env: object) -> bool:
    """Whether ``env`` (an ``Environment`` or ``HostEnvironment``) steps on the host."""
    return isinstance(env, HostEnvironment)


def no_oracle_message(name: str, what: str) -> str:
    """The one-line error for ``what`` (a true-dynamics use) on host environment ``name``."""
    return (
        f"{name} steps on the host (it is not a JAX environment), so there are no true "
        f"dynamics to plan with: {what} needs a JAX environment"
    )


__all__ = ["HostEnv", "HostEnvironment", "no_oracle_message", "steps_on_host", "uniform_action"]
