"""Random shooting: sample N uniform action sequences, keep the best.

The simplest planner of the lesson ("Planning with rollouts"): N sequences drawn uniformly
inside the action bounds are scored by the objective and the first action of the best one is
returned. With ``warm_start`` the previous solution, shifted one step, is scored as one of the
N candidates, so a good plan found earlier is never lost to sampling noise.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxmbrl.planners.base import (
    ContinuousPlannerConfig,
    PlanInfo,
    Planner,
    clip_broadcast,
    evaluate,
    select_best,
    shift_sequence,
)
from jaxmbrl.types import Array, Objective, PRNGKey
from jaxmbrl.validation import check_bool, check_positive_int


@dataclasses.dataclass(frozen=True)
class RandomShootingConfig(ContinuousPlannerConfig):
    """Configuration of :func:`random_shooting`.

    Attributes:
      horizon: ``H`` (>= 1).
      action_low, action_high: ``A`` bounds each.
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
class RandomShootingState:
    """Plan state of random shooting.

    Attributes:
      solution: ``[H, A] float32``, the last solution (shifted by ``shift``).
    """

    solution: Array


def random_shooting(config: RandomShootingConfig) -> Planner:
    """Build a random-shooting planner.

    Args:
      config: a :class:`RandomShootingConfig`.

    Returns:
      A :class:`~jaxmbrl.planners.base.Planner`. ``plan(state, key, objective)`` returns
      ``(action [A] float32, state, info)``; ``objective`` is called once on ``[N, H, A]``.
    """
    if not isinstance(config, RandomShootingConfig):
        raise TypeError(f"config must be a RandomShootingConfig, got {type(config).__name__}")
    low, high = config.bounds()
    shape = (config.num_samples, config.horizon, config.action_dim)

    def init() -> RandomShootingState:
        return RandomShootingState(solution=config.midpoint_plan())

    def plan(state: RandomShootingState, key: PRNGKey, objective: Objective):
        sample_key, eval_key = jax.random.split(key)
        candidates = jax.random.uniform(sample_key, shape, jnp.float32, low, high)
        if config.warm_start:
            candidates = candidates.at[0].set(clip_broadcast(state.solution, low, high))
        returns = evaluate(objective, eval_key, candidates)
        best, best_return = select_best(returns, candidates)
        info = PlanInfo(solution=best, expected_return=best_return)
        return best[0], RandomShootingState(solution=best), info

    def shift(state: RandomShootingState) -> RandomShootingState:
        return RandomShootingState(solution=shift_sequence(state.solution, (low + high) / 2))

    return Planner(init=init, plan=plan, shift=shift)
