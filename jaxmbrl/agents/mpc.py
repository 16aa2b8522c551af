"""Receding-horizon control (MPC) on a gymnax environment, one episode as one ``lax.scan``.

Every real step plans from the current environment state, acts with the first action of the
plan in the real environment (``step_env``: no auto-reset), records the reward, and shifts
the plan state one step forward (the warm start). By default the planner scores sequences
with the environment's own dynamics (:func:`jaxmbrl.rollouts.oracle_objective`): the
"oracle" upper bound of model-based control. A learned model plugs in through
``make_objective``.

Everything is pure: ``run_episode`` can be ``jit``-ed, and :func:`run_seeds` maps it over a
batch of keys with ``vmap`` so ``S`` seeds compile to one program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxmbrl.planners.base import Planner
from jaxmbrl.rollouts import oracle_objective
from jaxmbrl.types import Array, Objective, PRNGKey, PyTree

ObjectiveFactory = Callable[[PyTree, Array], Objective]
"""``(env_state, obs [O]) -> objective``: what the planner optimises at one real step."""


@struct.dataclass
class EpisodeResult:
    """What one MPC episode did (add a leading ``[S]`` axis under :func:`run_seeds`).

    Attributes:
      rewards: ``[T] float32`` real rewards, ``0`` after the environment terminated.
      alive: ``[T] bool``: ``True`` for the steps taken before the environment terminated
        (the step that terminates is still alive; its reward counts).
      actions: ``[T, A] float32`` (``[T] int32`` for discrete planners) actions taken.
      expected_returns: ``[T] float32``: the planner's imagined return at each step.
      episode_return: ``[] float32``: the sum of ``rewards``.
      observations: ``[T, O]``: the real observation each action was planned from.
      solutions: ``[T, H, A]`` (``[T, H]`` discrete): the whole plan chosen at each step
        (``PlanInfo.solution``), e.g. to score it again or play it open loop.
    """

    rewards: Array
    alive: Array
    actions: Array
    expected_returns: Array
    episode_return: Array
    observations: Array
    solutions: Array


def _episode_length(env_params: PyTree, num_steps: int | None) -> int:
    if num_steps is not None:
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
        return num_steps
    try:
        return int(env_params.max_steps_in_episode)
    except (TypeError, jax.errors.ConcretizationTypeError) as e:
        raise ValueError(
            "env_params.max_steps_in_episode is traced; pass num_steps explicitly"
        ) from e


def run_episode(
    env: Any,
    env_params: PyTree,
    planner: Planner,
    key: PRNGKey,
    *,
    num_steps: int | None = None,
    gamma: float = 1.0,
    chunk_size: int | None = None,
    make_objective: ObjectiveFactory | None = None,
) -> EpisodeResult:
    """One MPC episode: reset, then ``T`` steps of plan / act / shift in one ``lax.scan``.

    Args:
      env: a gymnax environment (a static Python object).
      env_params: its ``EnvParams`` (may be traced, e.g. vmapped for domain randomisation;
        then pass ``num_steps``).
      planner: a :class:`~jaxmbrl.planners.base.Planner`; its action must be what
        ``env.step_env`` takes (``[A] float32`` or ``[] int32``).
      key: PRNG key for the reset, the planner and the environment's steps.
      num_steps: ``T``; defaults to ``env_params.max_steps_in_episode``.
      gamma: discount of the imagined returns (the recorded real rewards are undiscounted).
      chunk_size: candidates per chunk in the oracle objective (``None``: all at once).
      make_objective: ``(env_state, obs) -> objective``; defaults to the oracle,
        :func:`jaxmbrl.rollouts.oracle_objective` on ``env_state``.

    Returns:
      An :class:`EpisodeResult` with ``[T]`` leading axes.
    """
    num_steps = _episode_length(env_params, num_steps)
    if make_objective is None:

        def make_objective(env_state, obs):
            del obs
            return oracle_objective(env, env_params, env_state, gamma=gamma, chunk_size=chunk_size)

    reset_key, loop_key = jax.random.split(key)
    obs, env_state = env.reset_env(reset_key, env_params)

    def step(carry, step_key):
        obs, env_state, plan_state, alive = carry
        plan_key, env_key = jax.random.split(step_key)
        objective = make_objective(env_state, obs)
        action, plan_state, info = planner.plan(plan_state, plan_key, objective)
        next_obs, next_state, reward, done, _ = env.step_env(env_key, env_state, action, env_params)
        reward = jnp.where(alive, jnp.asarray(reward, jnp.float32).reshape(()), 0.0)
        expected = jnp.asarray(info.expected_return, jnp.float32)
        out = (reward, alive, action, expected, obs, info.solution)
        alive = alive & ~jnp.asarray(done, bool).reshape(())
        return (next_obs, next_state, planner.shift(plan_state), alive), out

    init = (obs, env_state, planner.init(), jnp.array(True))
    keys = jax.random.split(loop_key, num_steps)
    _, (rewards, alive, actions, expected, observations, solutions) = jax.lax.scan(step, init, keys)
    return EpisodeResult(
        rewards=rewards,
        alive=alive,
        actions=actions,
        expected_returns=expected,
        episode_return=jnp.sum(rewards),
        observations=observations,
        solutions=solutions,
    )


def run_seeds(
    env: Any,
    env_params: PyTree,
    planner: Planner,
    keys: PRNGKey,
    *,
    num_steps: int | None = None,
    gamma: float = 1.0,
    chunk_size: int | None = None,
    make_objective: ObjectiveFactory | None = None,
) -> EpisodeResult:
    """:func:`run_episode` for a batch of keys ``[S]`` (``vmap``); fields gain a leading ``[S]``.

    ``env_params`` is shared by all seeds. Jit it at the call site, e.g.
    ``jax.jit(functools.partial(run_seeds, env, env_params, planner))(keys)``.
    """
    num_steps = _episode_length(env_params, num_steps)
    return jax.vmap(
        lambda k: run_episode(
            env,
            env_params,
            planner,
            k,
            num_steps=num_steps,
            gamma=gamma,
            chunk_size=chunk_size,
            make_objective=make_objective,
        )
    )(keys)


__all__ = ["EpisodeResult", "ObjectiveFactory", "run_episode", "run_seeds"]
