"""Planners over discrete actions: random shooting and CEM over per-step categoricals.

A discrete action is an ``[] int32`` index in ``[0, D)``; an action sequence is ``[H] int32``
and the objective receives ``[N, H] int32`` candidates (``(key, actions [N, H]) -> [N]``).

* :func:`discrete_random_shooting` samples ``N`` uniform sequences and keeps the best; with
  ``warm_start`` the shifted previous solution is one of the candidates.
* :func:`discrete_cem` keeps one categorical distribution per step (``[H, D]``
  probabilities), samples from it, and moves it towards the elites' action frequencies::

      probs <- alpha * probs + (1 - alpha) * frequency of each action among the K elites

  It tracks the best sequence scored and returns either the mode of the final distribution
  (``return_mode``) or that best sequence.

Warm start: the plan state holds the last solution (and, for CEM, the final distribution);
``shift`` moves them one step forward, repeating the last action and refilling the last
step's distribution with the uniform one. Each CEM call starts from
``warm_start_weight * stored + (1 - warm_start_weight) * uniform``, so a distribution that
collapsed at the previous step can still explore.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxmbrl.planners.base import (
    PlanInfo,
    Planner,
    evaluate,
    select_best,
    shift_sequence,
)
from jaxmbrl.planners.cem import update_best
from jaxmbrl.types import Array, Objective, PRNGKey
from jaxmbrl.validation import check_at_most, check_bool, check_fraction, check_positive_int


@dataclasses.dataclass(frozen=True)
class DiscretePlannerConfig:
    """Fields every discrete-action planner shares; subclasses add their own.

    Attributes:
      horizon: ``H`` (>= 1).
      num_actions: ``D``, the number of discrete actions (>= 1).
    """

    horizon: int
    num_actions: int

    def __post_init__(self):
        check_positive_int("horizon", self.horizon)
        check_positive_int("num_actions", self.num_actions)


@dataclasses.dataclass(frozen=True)
class DiscreteRandomShootingConfig(DiscretePlannerConfig):
    """Configuration of :func:`discrete_random_shooting`.

    Attributes:
      horizon: ``H`` (>= 1).
      num_actions: ``D`` (>= 1).
      num_samples: ``N`` candidate sequences per call (>= 1; >= 2 with ``warm_start``).
      warm_start: score the shifted previous solution as one of the ``N`` candidates.
    """

    num_samples: int = 1000
    warm_start: bool = True

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("num_samples", self.num_samples)
        check_bool("warm_start", self.warm_start)
        if self.warm_start and self.num_samples < 2:
            raise ValueError("num_samples must be >= 2 when warm_start is on")


@struct.dataclass
class DiscreteRandomShootingState:
    """Plan state of discrete random shooting.

    Attributes:
      solution: ``[H] int32``, the last solution (shifted by ``shift``).
    """

    solution: Array


@dataclasses.dataclass(frozen=True)
class DiscreteCEMConfig(DiscretePlannerConfig):
    """Configuration of :func:`discrete_cem`.

    Attributes:
      horizon: ``H`` (>= 1).
      num_actions: ``D`` (>= 1).
      num_samples: ``N``, the population per iteration (>= 1; >= 2 with ``warm_start``).
      num_elites: ``K``, ``1 <= K <= N``.
      num_iterations: iterations per planning call (>= 1).
      alpha: smoothing in ``[0, 1)``, the weight of the old probabilities.
      return_mode: return the most probable action of each step of the final distribution
        (``True``) or the best sequence scored during the call (``False``).
      warm_start: score the shifted previous solution as one candidate of the first
        iteration.
      warm_start_weight: in ``[0, 1]``, the weight of the stored (shifted) distribution in a
        call's initial distribution; the rest is uniform.
    """

    num_samples: int = 350
    num_elites: int = 35
    num_iterations: int = 5
    alpha: float = 0.1
    return_mode: bool = True
    warm_start: bool = True
    warm_start_weight: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("num_samples", self.num_samples)
        check_bool("return_mode", self.return_mode)
        check_bool("warm_start", self.warm_start)
        if self.warm_start and self.num_samples < 2:
            raise ValueError("num_samples must be >= 2 when warm_start is on")
        check_positive_int("num_elites", self.num_elites)
        check_at_most("num_elites", self.num_elites, "num_samples", self.num_samples)
        check_positive_int("num_iterations", self.num_iterations)
        check_fraction("alpha", self.alpha, high_open=True)
        check_fraction("warm_start_weight", self.warm_start_weight)


@struct.dataclass
class DiscreteCEMState:
    """Plan state of discrete CEM.

    Attributes:
      probs: ``[H, D] float32``, the final per-step distribution of the last call.
      solution: ``[H] int32``, the last returned solution.
    """

    probs: Array
    solution: Array


def _shift_solution(solution: Array) -> Array:
    return shift_sequence(solution, solution[-1])


def discrete_random_shooting(config: DiscreteRandomShootingConfig) -> Planner:
    """Build a random-shooting planner over discrete actions.

    Args:
      config: a :class:`DiscreteRandomShootingConfig`.

    Returns:
      A :class:`~jaxmbrl.planners.base.Planner`. ``plan(state, key, objective)`` returns
      ``(action [] int32, state, info)``; the objective is called once on ``[N, H] int32``.
    """
    if not isinstance(config, DiscreteRandomShootingConfig):
        raise TypeError(
            f"config must be a DiscreteRandomShootingConfig, got {type(config).__name__}"
        )
    shape = (config.num_samples, config.horizon)

    def init() -> DiscreteRandomShootingState:
        return DiscreteRandomShootingState(solution=jnp.zeros(config.horizon, jnp.int32))

    def plan(state: DiscreteRandomShootingState, key: PRNGKey, objective: Objective):
        sample_key, eval_key = jax.random.split(key)
        candidates = jax.random.randint(sample_key, shape, 0, config.num_actions, jnp.int32)
        if config.warm_start:
            previous = jnp.clip(state.solution.astype(jnp.int32), 0, config.num_actions - 1)
            candidates = candidates.at[0].set(previous)
        returns = evaluate(objective, eval_key, candidates)
        best, best_return = select_best(returns, candidates)
        info = PlanInfo(solution=best, expected_return=best_return)
        return best[0], DiscreteRandomShootingState(solution=best), info

    def shift(state: DiscreteRandomShootingState) -> DiscreteRandomShootingState:
        return DiscreteRandomShootingState(solution=_shift_solution(state.solution))

    return Planner(init=init, plan=plan, shift=shift)


def discrete_cem_update(
    probs: Array, samples: Array, returns: Array, num_elites: int, alpha: float
) -> tuple[Array, Array, Array]:
    """One discrete CEM update: move each step's distribution to the elites' frequencies.

    Args:
      probs: ``[H, D] float32`` current probabilities.
      samples: ``[N, H] int32`` the scored candidates.
      returns: ``[N] float32`` their sanitized returns; ties go to the lower index.
      num_elites: ``K`` (static).
      alpha: weight of the old probabilities, in ``[0, 1)``.

    Returns:
      ``(new_probs [H, D], elite_idx [K] int32, elite_returns [K])``, elites best first.
    """
    elite_returns, elite_idx = jax.lax.top_k(returns, num_elites)
    one_hot = jax.nn.one_hot(samples[elite_idx], probs.shape[-1], dtype=jnp.float32)
    new_probs = alpha * probs + (1 - alpha) * jnp.mean(one_hot, axis=0)
    return new_probs, elite_idx, elite_returns


def discrete_cem(config: DiscreteCEMConfig) -> Planner:
    """Build a CEM planner over discrete actions (per-step categorical distributions).

    Args:
      config: a :class:`DiscreteCEMConfig`.

    Returns:
      A :class:`~jaxmbrl.planners.base.Planner`. ``plan(state, key, objective)`` returns
      ``(action [] int32, state, info)``; the objective is called ``num_iterations`` times on
      ``[N, H] int32`` candidates. ``info.expected_return`` is the mean return of the last
      iteration's elites (``return_mode``) or the best return seen.
    """
    if not isinstance(config, DiscreteCEMConfig):
        raise TypeError(f"config must be a DiscreteCEMConfig, got {type(config).__name__}")
    num_actions = config.num_actions
    uniform = jnp.full((config.horizon, num_actions), 1.0 / num_actions, jnp.float32)
    shape = (config.num_samples, config.horizon)

    def init() -> DiscreteCEMState:
        return DiscreteCEMState(probs=uniform, solution=jnp.zeros(config.horizon, jnp.int32))

    def plan(state: DiscreteCEMState, key: PRNGKey, objective: Objective):
        w = config.warm_start_weight
        probs0 = w * state.probs + (1 - w) * uniform
        previous = jnp.clip(state.solution.astype(jnp.int32), 0, num_actions - 1)
        keys = jax.random.split(key, config.num_iterations)

        def iteration(carry, inputs):
            probs, best, best_return = carry
            i, iter_key = inputs
            sample_key, eval_key = jax.random.split(iter_key)
            logits = jnp.log(probs)  # zero probability -> -inf logit, never sampled
            samples = jax.random.categorical(sample_key, logits, axis=-1, shape=shape)
            samples = samples.astype(jnp.int32)
            if config.warm_start:
                samples = samples.at[0].set(jnp.where(i == 0, previous, samples[0]))
            returns = evaluate(objective, eval_key, samples)
            probs, elite_idx, elite_returns = discrete_cem_update(
                probs, samples, returns, config.num_elites, config.alpha
            )
            best, best_return = update_best(
                best, best_return, samples[elite_idx[0]], elite_returns[0]
            )
            return (probs, best, best_return), jnp.mean(elite_returns)

        carry0 = (probs0, previous, jnp.float32(-jnp.inf))
        inputs = (jnp.arange(config.num_iterations), keys)
        (probs, best, best_return), elite_mean_returns = jax.lax.scan(iteration, carry0, inputs)
        if config.return_mode:
            solution = jnp.argmax(probs, axis=-1).astype(jnp.int32)
            expected = elite_mean_returns[-1]
        else:
            solution, expected = best, best_return
        info = PlanInfo(solution=solution, expected_return=expected)
        return solution[0], DiscreteCEMState(probs=probs, solution=solution), info

    def shift(state: DiscreteCEMState) -> DiscreteCEMState:
        return DiscreteCEMState(
            probs=shift_sequence(state.probs, uniform[0]),
            solution=_shift_solution(state.solution),
        )

    return Planner(init=init, plan=plan, shift=shift)


__all__ = [
    "DiscreteCEMConfig",
    "DiscreteCEMState",
    "DiscretePlannerConfig",
    "DiscreteRandomShootingConfig",
    "DiscreteRandomShootingState",
    "discrete_cem",
    "discrete_cem_update",
    "discrete_random_shooting",
]
