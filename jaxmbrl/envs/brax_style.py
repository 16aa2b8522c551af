"""MuJoCo physics behind brax's pure interface: MuJoCo Playground and Brax environments.

Both libraries' environments are pure and alike: ``env.reset(rng) -> State`` and
``env.step(state, action) -> State``, where ``State.obs`` is the observation ``[O]``,
``State.reward`` ``[]``, ``State.done`` ``[]`` (``0.0`` or ``1.0``), ``env.action_size`` is
``A`` and actions lie in ``[-1, 1]^A`` (each environment scales them to its actuators). One
adapter turns any such environment into the library's ``(EnvSpec, Environment)``
(:func:`wrap`), with an optional action repeat; two loaders name them:

* ``playground:<Task>`` (:func:`load_playground`): a DeepMind Control suite task of MuJoCo
  Playground (``CartpoleSwingup``, ``CheetahRun``, ``ReacherEasy``, ...), on MJX's pure-JAX
  implementation (``impl="jax"``); episode length, action repeat and control step from the
  task's default config.
* ``brax:<name>[@backend]`` (:func:`load_brax`): a Brax environment (``halfcheetah``,
  ``hopper``, ``reacher``, ``inverted_pendulum``, ...) on a Brax physics backend
  (``spring``, the fastest on CPU, unless named: ``brax:hopper@positional``). Brax
  environments have no time limit of their own; episodes last
  :data:`BRAX_EPISODE_LENGTH` steps (the default of Brax's training wrapper).

Neither library is imported until a loader runs: they are the optional ``mujoco`` extra
(``pip install 'jaxmbrl[mujoco]'``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.envs import mujoco_rewards
from jaxmbrl.envs.spec import Environment, EnvSpec
from jaxmbrl.rollouts import make_objective
from jaxmbrl.types import ActionSpace, Array, Objective, PyTree
from jaxmbrl.validation import check_positive_int

BRAX_BACKENDS = ("spring", "positional", "generalized", "mjx")
DEFAULT_BRAX_BACKEND = "spring"  # ~3x positional on CPU; generalized and mjx are far slower
BRAX_EPISODE_LENGTH = 1000  # brax.envs.wrappers.training's default episode_length
INSTALL_HINT = "pip install 'jaxmbrl[mujoco]'"


class _Stepped(NamedTuple):
    """One real step's outcome, and the oracle rollout's dynamics state."""

    physics: PyTree  # the environment's State after the step
    reward: Array  # [] float32, the rewards of the sub-steps up to the first done, summed
    done: Array  # [] bool, whether any sub-step was done


def repeated_step(env: Any, action_repeat: int = 1):
    """``(state, action [A]) -> _Stepped``: ``env.step`` applied ``action_repeat`` times.

    The rewards are summed up to and including the first sub-step that is done (later ones
    add nothing) and the step is done if any sub-step is. The physics still runs the
    remaining sub-steps; the caller stops using a state that is done.
    """
    check_positive_int("action_repeat", action_repeat)

    def one(state, action) -> _Stepped:
        nxt = env.step(state, action)
        reward = jnp.asarray(nxt.reward, jnp.float32).reshape(())
        return _Stepped(nxt, reward, jnp.asarray(nxt.done).reshape(()) > 0)

    if action_repeat == 1:
        return one

    def step(state, action) -> _Stepped:
        def sub(carry: _Stepped, _) -> tuple[_Stepped, None]:
            nxt = one(carry.physics, action)
            reward = carry.reward + jnp.where(carry.done, 0.0, nxt.reward)
            return _Stepped(nxt.physics, reward, carry.done | nxt.done), None

        # One scan over all sub-steps, so the physics is traced (and compiled) once.
        start = _Stepped(state, jnp.float32(0.0), jnp.asarray(False))
        out, _ = jax.lax.scan(sub, start, None, length=action_repeat)
        return out

    return step


def oracle_objective(
    env: Any,
    env_state: PyTree,
    *,
    action_repeat: int = 1,
    gamma: float = 1.0,
    chunk_size: int | None = None,
) -> Objective:
    """Score sequences by rolling out the environment's own physics from ``env_state``.

    The perfect-model ("oracle") objective: :func:`jaxmbrl.rollouts.rollout_return` over
    :func:`repeated_step`, terminating on the state's ``done``, chunked over the candidates
    (:func:`jaxmbrl.rollouts.chunked_map`). Non-finite returns (diverged physics) score
    ``-inf``.

    Args:
      env: an environment with brax's interface.
      env_state: its ``State`` to plan from (may be traced).
      action_repeat: underlying steps per real step.
      gamma: discount per real step.
      chunk_size: candidates per chunk, or ``None``.

    Returns:
      ``objective(key, actions [N, H, A]) -> [N] float32`` (the key is unused: the physics
      is deterministic).
    """
    advance = repeated_step(env, action_repeat)

    def dynamics(params, key, state: _Stepped, action):
        del params, key
        nxt = advance(state.physics, action)
        return nxt, nxt.reward

    def terminated(state, action, next_state: _Stepped):
        del state, action
        return next_state.done

    start = _Stepped(env_state, jnp.float32(0.0), jnp.asarray(False))
    return make_objective(
        dynamics,
        None,
        start,
        gamma=gamma,
        termination_fn=terminated,
        chunk_size=chunk_size,
        sanitize=True,
    )


def functions(
    env: Any,
    *,
    action_repeat: int = 1,
    reward_fn=None,
    termination_fn=None,
) -> Environment:
    """An environment with brax's interface as an :class:`Environment`.

    ``reset(key) -> (obs [O], state)``; ``step(key, state, action [A]) -> (next_obs [O],
    state, reward [] float32, done [] bool)`` applies the action ``action_repeat`` times
    (:func:`repeated_step`; the key is unused, the physics is deterministic);
    ``sample_action`` is uniform in ``[-1, 1]^A``; ``oracle_objective`` rolls out the same
    physics (:func:`oracle_objective`).
    """
    advance = repeated_step(env, action_repeat)
    num_actions = int(env.action_size)

    def reset(key):
        state = env.reset(key)
        return state.obs, state

    def step(key, state, action):
        del key
        out = advance(state, action)
        return out.physics.obs, out.physics, out.reward, out.done

    def sample_action(key):
        return jax.random.uniform(key, (num_actions,), jnp.float32, -1.0, 1.0)

    def oracle(state, gamma: float = 1.0, chunk_size: int | None = None):
        return oracle_objective(
            env, state, action_repeat=action_repeat, gamma=gamma, chunk_size=chunk_size
        )

    return Environment(
        reset=reset,
        step=step,
        sample_action=sample_action,
        oracle_objective=oracle,
        reward_fn=reward_fn,
        termination_fn=termination_fn,
    )


def spec(
    name: str,
    env: Any,
    *,
    episode_length: int,
    action_repeat: int = 1,
    ctrl_dt: float | None = None,
) -> EnvSpec:
    """The :class:`EnvSpec` of an environment with brax's interface.

    The observation must be one flat vector ``[O]`` (vision or dictionary observations are
    refused with a ``ValueError``); actions are the box ``[-1, 1]^A``. ``episode_length``
    counts real steps (each ``action_repeat`` underlying steps).
    """
    obs = jax.eval_shape(env.reset, jax.random.key(0)).obs
    if not isinstance(obs, jax.ShapeDtypeStruct) or len(obs.shape) != 1:
        shapes = jax.tree.map(lambda x: tuple(x.shape), obs)
        raise ValueError(
            f"environment {name!r} observes {shapes}, not one flat vector; jaxmbrl needs a "
            "flat [O] observation (no vision or dictionary observations)"
        )
    if not jnp.issubdtype(obs.dtype, jnp.floating):
        raise ValueError(f"environment {name!r} observes {obs.dtype}, not floats")
    num_actions = int(env.action_size)
    return EnvSpec(
        name=name,
        obs_dim=int(obs.shape[0]),
        action=ActionSpace.box([-1.0] * num_actions, [1.0] * num_actions),
        episode_length=episode_length,
        action_repeat=action_repeat,
        ctrl_dt=ctrl_dt,
    )


def wrap(
    name: str,
    env: Any,
    *,
    env_episode_length: int,
    episode_length: int | None = None,
    action_repeat: int = 1,
    ctrl_dt: float | None = None,
    known: tuple[Any, Any] = (None, None),
) -> tuple[EnvSpec, Environment]:
    """Any environment with brax's interface as ``(EnvSpec, Environment)``.

    Args:
      name: the name it goes by (``EnvSpec.name``).
      env: the environment (``reset``, ``step``, ``action_size``).
      env_episode_length: its time limit in underlying steps; the episode lasts
        ``ceil(env_episode_length / action_repeat)`` real steps unless ``episode_length``
        (in real steps) overrides it.
      episode_length: ``T`` real steps, or ``None``.
      action_repeat: underlying steps per real step (>= 1).
      ctrl_dt: seconds of simulated time per underlying step, if known.
      known: the task's ``(reward_fn, termination_fn)`` on observations of one underlying
        step; dropped when ``action_repeat > 1`` (a real step's reward is then a sum over
        intermediate states that the observations do not show).
    """
    check_positive_int("action_repeat", action_repeat)
    if episode_length is None:
        episode_length = math.ceil(env_episode_length / action_repeat)
    reward_fn, termination_fn = known if action_repeat == 1 else (None, None)
    env_spec = spec(
        name, env, episode_length=episode_length, action_repeat=action_repeat, ctrl_dt=ctrl_dt
    )
    fns = functions(
        env, action_repeat=action_repeat, reward_fn=reward_fn, termination_fn=termination_fn
    )
    return env_spec, fns


def _float32_value(x) -> float:
    """A float32 scalar as the shortest float that rounds to it (``0.008``, not
    ``0.00800000037997961``)."""
    return float(np.format_float_positional(np.float32(x)))


def _missing_extra(family: str, error: ImportError) -> ValueError:
    return ValueError(
        f"{family}:... environments need the optional MuJoCo extra ({error}); install it "
        f"with {INSTALL_HINT}"
    )


def playground_tasks() -> tuple[str, ...]:
    """The DeepMind Control suite tasks of MuJoCo Playground (``playground:<Task>``)."""
    try:
        from mujoco_playground import registry
    except ImportError as e:
        raise _missing_extra("playground", e) from None
    return tuple(registry.dm_control_suite.ALL_ENVS)


def load_playground(
    task: str, episode_length: int | None = None, *, action_repeat: int | None = None
) -> tuple[EnvSpec, Environment]:
    """A MuJoCo Playground DeepMind Control task as ``(EnvSpec, Environment)``.

    Loaded with MJX's pure-JAX implementation (``impl="jax"``; Playground's default,
    ``warp``, is not pure JAX). The episode length (1000 control steps for every task),
    the action repeat and the control step (``ctrl_dt``) come from the task's default
    config.

    Args:
      task: a name of :func:`playground_tasks` (``"CartpoleSwingup"``).
      episode_length: ``T`` real steps, overriding the task's.
      action_repeat: underlying steps per real step (default: the task's, else 1).

    Raises:
      ValueError: for an unknown task (listing the known ones), a task without a flat
        observation, or a missing extra.
    """
    name = f"playground:{task}"
    known_tasks = playground_tasks()
    if task not in known_tasks:
        raise ValueError(
            f"unknown environment {name!r}; known playground tasks (DeepMind Control): "
            f"{', '.join(known_tasks)}"
        )
    from mujoco_playground import registry

    config = registry.get_default_config(task)
    env = registry.load(task, config_overrides={"impl": "jax"})
    env_length = config.get("episode_length")
    if env_length is None and episode_length is None:
        raise ValueError(f"{name} has no episode_length in its config; give one")
    if action_repeat is None:
        action_repeat = int(config.get("action_repeat", 1) or 1)
    ctrl_dt = config.get("ctrl_dt")
    return wrap(
        name,
        env,
        env_episode_length=int(env_length or episode_length),
        episode_length=episode_length,
        action_repeat=action_repeat,
        ctrl_dt=None if ctrl_dt is None else float(ctrl_dt),
        known=mujoco_rewards.known_functions("playground", task),
    )


def brax_names() -> tuple[str, ...]:
    """The environments of Brax's registry (``brax:<name>``)."""
    try:
        import brax.envs
    except ImportError as e:
        raise _missing_extra("brax", e) from None
    return tuple(sorted(brax.envs._envs))  # brax has no public listing of its registry


def load_brax(
    name: str, episode_length: int | None = None, *, action_repeat: int | None = None
) -> tuple[EnvSpec, Environment]:
    """A Brax environment as ``(EnvSpec, Environment)``.

    Args:
      name: ``"<env>"`` or ``"<env>@<backend>"``: a name of :func:`brax_names` and one of
        :data:`BRAX_BACKENDS` (default :data:`DEFAULT_BRAX_BACKEND`).
      episode_length: ``T`` real steps (default: :data:`BRAX_EPISODE_LENGTH` underlying
        steps, divided by the action repeat).
      action_repeat: underlying steps per real step (default 1: Brax environments have no
        action repeat of their own).

    Raises:
      ValueError: for an unknown environment or backend (listing the known ones), an
        environment without a flat observation, or a missing extra.
    """
    full = f"brax:{name}"
    env_name, at, backend = name.partition("@")
    if not at:
        backend = DEFAULT_BRAX_BACKEND
    known_names = brax_names()
    if env_name not in known_names:
        raise ValueError(
            f"unknown environment {full!r}; known brax environments: {', '.join(known_names)} "
            f"(optionally @backend, one of {', '.join(BRAX_BACKENDS)})"
        )
    if backend not in BRAX_BACKENDS:
        raise ValueError(
            f"unknown brax backend {backend!r} in {full!r}; known: {', '.join(BRAX_BACKENDS)}"
        )
    import brax.envs

    with warnings.catch_warnings():  # brax warns on every load that it is unmaintained
        warnings.filterwarnings("ignore", message="Brax System, piplines", category=UserWarning)
        try:
            env = brax.envs.get_environment(env_name, backend=backend)
        except ValueError as e:  # e.g. swimmer runs on 'generalized' only
            raise ValueError(
                f"{full!r}: brax's {env_name} does not run on backend {backend!r} ({e}); "
                f"name another: brax:{env_name}@<backend>, one of {', '.join(BRAX_BACKENDS)}"
            ) from None
    dt = getattr(env, "dt", None)
    return wrap(
        f"brax:{env_name}@{backend}",
        env,
        env_episode_length=BRAX_EPISODE_LENGTH,
        episode_length=episode_length,
        action_repeat=1 if action_repeat is None else action_repeat,
        ctrl_dt=None if dt is None else _float32_value(dt),
        known=mujoco_rewards.known_functions("brax", env_name),
    )


__all__ = [
    "BRAX_BACKENDS",
    "BRAX_EPISODE_LENGTH",
    "DEFAULT_BRAX_BACKEND",
    "brax_names",
    "functions",
    "load_brax",
    "load_playground",
    "oracle_objective",
    "playground_tasks",
    "repeated_step",
    "spec",
    "wrap",
]
