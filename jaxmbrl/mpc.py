"""Receding-horizon control: one MPC step, and the episode ``lax.scan`` built from it.

Every real step plans from the current observation (and environment state), acts with the
first action of the plan in the real environment (no automatic reset), records what
happened, and shifts the plan one step forward (the warm start). :func:`mpc_step` is that
step, the only one in the library: oracle MPC (:func:`run_episode`), PETS's planned, oracle
and random episodes, the examples and a user's own loop are all built from it.

* What the planner maximises at a step comes from an :data:`ObjectiveFactory`
  ``(env_state, obs) -> objective``: the true dynamics (:func:`oracle`), particle rollouts
  through a learned model, or anything else.
* The random policy is a planner too (:func:`random_planner`), so a random episode is the
  same scan.

Everything is pure: :func:`episode` can be ``jit``-ed and ``vmap``-ed (:func:`run_seeds`
maps :func:`run_episode` over a batch of keys, so ``S`` seeds compile to one program).
The one exception is :func:`host_episode`, for environments that step on the host
(:mod:`jaxmbrl.envs.host`): a Python loop over real steps whose planning half
(:func:`plan_step`, the first half of :func:`mpc_step`) is one compiled call per step for
all seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmbrl.envs.host import HostEnv
from jaxmbrl.envs.spec import Environment
from jaxmbrl.planners.base import PlanInfo, Planner
from jaxmbrl.types import Array, Objective, PRNGKey, PyTree
from jaxmbrl.validation import check_positive_int

ObjectiveFactory = Callable[[PyTree, Array], Objective]
"""``(env_state, obs [O]) -> objective``: what the planner maximises at one real step."""

ProgressHook = Callable[[Array, Array], None]
"""``(t [] int32, running_return [] float32) -> None``, called at trace time inside every
step (it typically issues a ``jax.debug.callback``)."""


class EpisodeCarry(NamedTuple):
    """The scan carry of an episode: where the real system and the plan stand."""

    obs: Array  # [O] the current real observation
    env_state: PyTree  # the environment's state
    plan_state: PyTree  # the planner's state, already shifted (the warm start)
    alive: Array  # [] bool, False once the environment has terminated
    running_return: Array  # [] float32, the real return so far


@struct.dataclass
class EpisodeRecord:
    """What one episode did, step by step (add a leading ``[S]`` axis over seeds).

    Attributes:
      observations: ``[T, O]`` the real observation each action was planned from.
      actions: ``[T, A] float32`` (``[T] int32`` for discrete actions) the actions taken.
      rewards: ``[T] float32`` real rewards, ``0`` after the environment terminated.
      next_observations: ``[T, O]`` the observation after each action.
      alive: ``[T] bool``: ``True`` for the steps taken before the environment terminated
        (the step that terminates is still alive; its reward counts).
      expected_returns: ``[T] float32`` the planner's imagined return at each step (NaN for
        the random planner and for steps planned from a non-finite observation).
      solutions: ``[T, H, A]`` (``[T, H]`` discrete) the whole plan chosen at each step.
      episode_return: ``[] float32`` the sum of ``rewards``.
      length: ``[] int32`` the number of alive steps.
      env_states: the environment state each action was planned from (every leaf gains a
        leading ``[T]``), or ``None`` unless the episode was run with
        ``record_env_states=True`` (e.g. to score the chosen plans again with the true
        dynamics, :func:`rescore`).
    """

    observations: Array
    actions: Array
    rewards: Array
    next_observations: Array
    alive: Array
    expected_returns: Array
    solutions: Array
    episode_return: Array
    length: Array
    env_states: PyTree = None


class _Step(NamedTuple):
    """One step's outputs (stacked over time by the scan)."""

    obs: Array  # [O]
    action: Array  # [A] or []
    reward: Array  # []
    next_obs: Array  # [O]
    alive: Array  # [] bool
    info: PlanInfo
    env_state: PyTree  # the state the action was planned from


def _flat_unless(ok: Array, objective: Objective) -> Objective:
    """``objective`` where ``ok`` (``[] bool``), else one that scores every sequence ``0``."""

    def flat_or_objective(key: PRNGKey, actions: Array) -> Array:
        returns = objective(key, actions)
        return jnp.where(ok, returns, jnp.zeros_like(returns))

    return flat_or_objective


def plan_step(
    planner: Planner,
    make_objective: ObjectiveFactory | None,
    env_state: PyTree,
    obs: Array,
    plan_state: PyTree,
    key: PRNGKey,
) -> tuple[Array, PyTree, PlanInfo]:
    """The planning half of :func:`mpc_step`: plan from ``obs`` (the plan is not shifted).

    A non-finite ``obs`` plans with a flat objective and records a NaN imagined return (see
    :func:`mpc_step`). Both the compiled episode and the host loop (:func:`host_episode`)
    plan through this function.

    Args:
      planner: any :class:`~jaxmbrl.planners.base.Planner`.
      make_objective: ``(env_state, obs) -> objective``, or ``None``.
      env_state: the environment's state (``None`` for a host environment).
      obs: ``[O]`` the current real observation.
      plan_state: the planner's state (warm-started).
      key: consumed by the planner.

    Returns:
      ``(action [A] float32 or [] int32, plan_state (not shifted), PlanInfo)``.
    """
    obs_ok = jnp.all(jnp.isfinite(obs))
    objective = None
    if make_objective is not None:
        objective = _flat_unless(obs_ok, make_objective(env_state, obs))
    action, plan_state, info = planner.plan(plan_state, key, objective)
    info = info.replace(expected_return=jnp.where(obs_ok, info.expected_return, jnp.nan))
    return action, plan_state, info


def mpc_step(
    env: Environment,
    planner: Planner,
    make_objective: ObjectiveFactory | None,
    carry: EpisodeCarry,
    key: PRNGKey,
) -> tuple[EpisodeCarry, _Step]:
    """One real step: plan from ``carry``, act with the first action, shift the plan.

    A non-finite current observation (a NaN or infinite entry) cannot be planned from: the
    step then plans with a flat objective (every sequence scores ``0``), so the action is the
    planner's own choice among equals -- drawn from its current distribution around the
    warm start, finite and within the action bounds -- and the step's imagined return is
    recorded as NaN. The step is still taken and recorded (PETS drops such transitions at the
    replay buffer's door, :func:`jaxmbrl.buffer.finite_rows`).

    Args:
      env: the environment's functions.
      planner: any :class:`~jaxmbrl.planners.base.Planner`.
      make_objective: ``(env_state, obs) -> objective``; ``None`` for planners that ignore
        the objective (:func:`random_planner`).
      carry: the :class:`EpisodeCarry` before the step.
      key: consumed: split into the planner's key and the environment's.

    Returns:
      ``(carry after the step, the step's outputs)``; the reward is ``0`` once not alive.
    """
    k_act, k_env = jax.random.split(key)
    action, plan_state, info = plan_step(
        planner, make_objective, carry.env_state, carry.obs, carry.plan_state, k_act
    )
    next_obs, env_state, reward, done = env.step(k_env, carry.env_state, action)
    reward = jnp.where(carry.alive, reward, 0.0)
    out = _Step(carry.obs, action, reward, next_obs, carry.alive, info, carry.env_state)
    carry = EpisodeCarry(
        obs=next_obs,
        env_state=env_state,
        plan_state=planner.shift(plan_state),
        alive=carry.alive & ~done,
        running_return=carry.running_return + reward,
    )
    return carry, out


def episode(
    env: Environment,
    planner: Planner,
    make_objective: ObjectiveFactory | None,
    reset_key: PRNGKey,
    step_keys: PRNGKey,
    *,
    progress: ProgressHook | None = None,
    record_env_states: bool = False,
) -> EpisodeRecord:
    """One episode: reset, then ``T = len(step_keys)`` MPC steps in one ``lax.scan``.

    Args:
      env: the environment's functions.
      planner: the planner (started from ``planner.init()``).
      make_objective: ``(env_state, obs) -> objective`` (``None`` for the random planner).
      reset_key: the key of the reset.
      step_keys: ``[T]`` one key per step.
      progress: optional ``(t, running_return)`` hook called inside every step.
      record_env_states: also return the environment state of every step
        (``EpisodeRecord.env_states``; static).

    Returns:
      An :class:`EpisodeRecord` with ``[T]`` leading axes.
    """
    obs, env_state = env.reset(reset_key)
    init = EpisodeCarry(obs, env_state, planner.init(), jnp.array(True), jnp.float32(0.0))

    def step(carry, inputs):
        t, key = inputs
        carry, out = mpc_step(env, planner, make_objective, carry, key)
        if progress is not None:
            progress(t, carry.running_return)
        return carry, out if record_env_states else out._replace(env_state=None)

    num_steps = step_keys.shape[0]
    _, steps = jax.lax.scan(step, init, (jnp.arange(num_steps), step_keys))
    return EpisodeRecord(
        observations=steps.obs,
        actions=steps.action,
        rewards=steps.reward,
        next_observations=steps.next_obs,
        alive=steps.alive,
        expected_returns=jnp.asarray(steps.info.expected_return, jnp.float32),
        solutions=steps.info.solution,
        episode_return=jnp.sum(steps.reward),
        length=jnp.sum(steps.alive.astype(jnp.int32)),
        env_states=steps.env_state,
    )


def rescore(make_objective: ObjectiveFactory, record: EpisodeRecord, keys: PRNGKey) -> Array:
    """Score the plan chosen at every step again, from the state it was planned from.

    Args:
      make_objective: ``(env_state, obs) -> objective``: the model to judge the plans by
        (the true dynamics, :func:`oracle`, for the return a plan would really get open loop;
        the planner's own model for what it was promised).
      record: an episode; run it with ``record_env_states=True`` when ``make_objective``
        reads the environment state (the oracle does; a learned model reads only ``obs``
        and gets ``None`` when the states were not recorded).
      keys: ``[T]`` one key per step for the objective.

    Returns:
      ``[T] float32``: ``make_objective(s_t, o_t)(key_t, solutions[t][None])[0]``.
    """

    def score(state, obs, plan, key):
        return make_objective(state, obs)(key, plan[None])[0]

    states_axis = None if record.env_states is None else 0
    return jax.vmap(score, in_axes=(states_axis, 0, 0, 0))(
        record.env_states, record.observations, record.solutions, keys
    )


def oracle(env: Environment, *, gamma: float = 1.0, chunk_size: int | None = None):
    """The true dynamics as the model: ``(env_state, obs) -> env.oracle_objective(...)``."""

    def make_objective(env_state, obs):
        del obs
        return env.oracle_objective(env_state, gamma, chunk_size)

    return make_objective


def run_episode(
    env: Environment,
    planner: Planner,
    key: PRNGKey,
    *,
    num_steps: int,
    make_objective: ObjectiveFactory | None = None,
    gamma: float = 1.0,
    chunk_size: int | None = None,
) -> EpisodeRecord:
    """One MPC episode from ``key``; by default planned with the true dynamics (oracle MPC).

    Args:
      env: the environment's functions (e.g. ``jaxmbrl.envs.load(name)[1]``).
      planner: its action must be what ``env.step`` takes (``[A] float32`` or ``[] int32``).
      key: consumed: split into the reset key and one key per step.
      num_steps: ``T`` (>= 1), e.g. ``EnvSpec.episode_length``.
      make_objective: ``(env_state, obs) -> objective``; defaults to :func:`oracle`.
      gamma: discount of the oracle's imagined returns (real rewards are undiscounted).
      chunk_size: candidates per chunk in the oracle objective (``None``: all at once).

    Returns:
      An :class:`EpisodeRecord` with ``[T]`` leading axes.
    """
    check_positive_int("num_steps", num_steps)
    if make_objective is None:
        make_objective = oracle(env, gamma=gamma, chunk_size=chunk_size)
    reset_key, loop_key = jax.random.split(key)
    return episode(env, planner, make_objective, reset_key, jax.random.split(loop_key, num_steps))


def run_seeds(env: Environment, planner: Planner, keys: PRNGKey, **kwargs) -> EpisodeRecord:
    """:func:`run_episode` for a batch of keys ``[S]`` (``vmap``); fields gain a leading
    ``[S]``. Jit it at the call site:
    ``jax.jit(functools.partial(run_seeds, env, planner, num_steps=200))(keys)``."""
    return jax.vmap(lambda k: run_episode(env, planner, k, **kwargs))(keys)


HostAct = Callable[[PyTree, Array, PRNGKey], tuple[Array, PyTree, PlanInfo]]
"""``(plan_state, obs [S, O] float32, keys [S]) -> (actions [S, A] or [S], plan_state,
PlanInfo [S])``: one real step's planning for ``S`` seeds -- :func:`plan_step` then the
planner's shift, vmapped and jitted by the caller, so that it compiles once."""

HostProgress = Callable[[int, int, float], None]
"""``(seed index, t, running_return) -> None``, called on the host after every real step."""


def host_episode(
    envs: Sequence[HostEnv],
    act: HostAct,
    plan_state: PyTree,
    reset_seeds: Sequence[int],
    step_keys: PRNGKey,
    *,
    progress: HostProgress | None = None,
) -> EpisodeRecord:
    """One episode of ``S`` environments that step on the host, planned on the device.

    The host counterpart of :func:`episode`, over seeds at once: environment ``s`` resets
    from ``reset_seeds[s]``; then every real step is one call of ``act`` for all seeds (the
    planner and the model stay compiled) and one ``step`` of each environment in Python.
    An environment that terminated or truncated is not stepped again: its later steps
    repeat its last observation with reward ``0`` and ``alive`` False (as a terminated
    gymnax environment's masked steps). Once every environment is done the loop ends; the
    steps not run are recorded the same way, with zero actions and plans and NaN imagined
    returns.

    Args:
      envs: ``S`` host environments (:class:`~jaxmbrl.envs.host.HostEnv`).
      act: the compiled planning call (:data:`HostAct`).
      plan_state: the planner's initial state, with a leading ``[S]`` axis.
      reset_seeds: ``S`` non-negative ints, one per environment.
      step_keys: ``[S, T]`` one key per seed and step (``act`` consumes ``step_keys[:, t]``).
      progress: optional :data:`HostProgress`.

    Returns:
      An :class:`EpisodeRecord` with ``[S, T]`` leading axes (``env_states`` is ``None``).
    """
    num_seeds, num_steps = step_keys.shape[:2]
    obs = np.stack([env.reset(seed) for env, seed in zip(envs, reset_seeds, strict=True)])
    obs = obs.astype(np.float32).reshape(num_seeds, -1)
    observations = np.repeat(obs[:, None], num_steps, axis=1)  # [S, T, O]
    next_observations = observations.copy()
    rewards = np.zeros((num_seeds, num_steps), np.float32)
    alive = np.zeros((num_seeds, num_steps), bool)
    expected = np.full((num_seeds, num_steps), np.nan, np.float32)
    actions = solutions = None  # [S, T, ...], shaped by the first plan
    live = np.ones(num_seeds, bool)
    for t in range(num_steps):
        if not live.any():
            observations[:, t:] = next_observations[:, t:] = obs[:, None]
            break
        action, plan_state, info = act(plan_state, obs, step_keys[:, t])
        action, solution, expected[:, t] = jax.device_get(
            (action, info.solution, info.expected_return)
        )
        if actions is None:
            actions = np.zeros((num_seeds, num_steps, *action.shape[1:]), action.dtype)
            solutions = np.zeros((num_seeds, num_steps, *solution.shape[1:]), solution.dtype)
        actions[:, t], solutions[:, t], alive[:, t] = action, solution, live
        observations[:, t] = obs
        obs = obs.copy()
        for s in np.flatnonzero(live):
            next_obs, rewards[s, t], terminated, truncated = envs[s].step(action[s])
            obs[s] = np.asarray(next_obs, np.float32).reshape(-1)
            live[s] = not (terminated or truncated)
        next_observations[:, t] = obs
        if progress is not None:
            running = rewards[:, : t + 1].sum(axis=1)  # [S]
            for s in range(num_seeds):
                progress(s, t, float(running[s]))
    return EpisodeRecord(
        observations=jnp.asarray(observations),
        actions=jnp.asarray(actions),
        rewards=jnp.asarray(rewards),
        next_observations=jnp.asarray(next_observations),
        alive=jnp.asarray(alive),
        expected_returns=jnp.asarray(expected),
        solutions=jnp.asarray(solutions),
        episode_return=jnp.asarray(rewards.sum(axis=1)),
        length=jnp.asarray(alive.sum(axis=1), jnp.int32),
    )


class _NoPlan(NamedTuple):
    """The random planner's (empty) plan state."""


def random_planner(sample_action: Callable[[PRNGKey], Array]) -> Planner:
    """The random policy as a planner: every call returns ``sample_action(key)``.

    It ignores the objective (pass ``make_objective=None``), its plan is the one action
    (``solution [1, ...]``) and its expected return is NaN.
    """

    def plan(state, key, objective):
        del objective
        action = sample_action(key)
        return action, state, PlanInfo(solution=action[None], expected_return=jnp.float32(jnp.nan))

    return Planner(init=_NoPlan, plan=plan, shift=lambda state: state)


__all__ = [
    "EpisodeCarry",
    "EpisodeRecord",
    "HostAct",
    "HostProgress",
    "ObjectiveFactory",
    "ProgressHook",
    "episode",
    "host_episode",
    "mpc_step",
    "oracle",
    "plan_step",
    "random_planner",
    "rescore",
    "run_episode",
    "run_seeds",
]
