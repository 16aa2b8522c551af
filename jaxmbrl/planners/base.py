"""The planner contract and the pieces every planner shares.

A planner is a factory ``jaxmbrl.planners.<name>(config)`` returning a :class:`Planner`:
a NamedTuple of three pure functions, in the manner of optax's ``GradientTransformation``
and mctx's search functions.

* ``init() -> plan_state``: the initial plan state, a pytree of arrays (for example the
  mean and standard deviation of the action distribution, ``[H, A]`` each).
* ``plan(plan_state, key, objective) -> (action, new_plan_state, info)``: one planning call.
  ``action`` is ``[A] float32`` (continuous) or ``[] int32`` (discrete); ``new_plan_state``
  holds the solution found, *not yet shifted*; ``info`` is a :class:`PlanInfo`.
* ``shift(plan_state) -> plan_state``: the receding-horizon warm start: moves the stored
  solution one step forward and refills the tail. MPC calls it after acting.

No state is hidden anywhere: warm starts are explicit ``shift`` calls on explicit state, and
the library does not wrap ``plan`` in a ``jit`` -- callers jit at their boundary (the objective
usually closes over traced values such as model parameters and the current observation), and
``plan`` works under the caller's ``jit``, ``vmap`` and ``lax.scan``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
from flax import struct

from jaxmbrl.types import Array, Objective, PRNGKey
from jaxmbrl.validation import (
    as_float_tuple,
    check_positive_float,
    check_positive_int,
    sanitize_returns,
)

PlanState = Any

# Planners square the action range in float32 (variances, elite statistics summed over a
# population): bounds beyond this would overflow them to inf and NaN. Real action ranges are
# many orders of magnitude smaller.
MAX_ACTION_BOUND = 1e15


class Planner(NamedTuple):
    """A planner: three pure functions (see the module docstring)."""

    init: Callable[[], PlanState]
    plan: Callable[[PlanState, PRNGKey, Objective], tuple[Array, PlanState, PlanInfo]]
    shift: Callable[[PlanState], PlanState]


@struct.dataclass
class PlanInfo:
    """What a planning call found, for logging and for measuring model bias.

    Attributes:
      solution: ``[H, A] float32`` (``[H] int32`` for discrete planners): the action sequence
        whose first action is returned.
      expected_return: ``[] float32``: the objective's score of the returned plan as the
        planner saw it (for the best-sample planners, the best sample's return; for CEM
        returning the elite mean, the mean return of the last iteration's elites). This is
        the *imagined* return; compare it with the real one to see model bias.
    """

    solution: Array
    expected_return: Array


@dataclasses.dataclass(frozen=True)
class ContinuousPlannerConfig:
    """Fields every continuous-action planner shares; subclasses add their own.

    Attributes:
      horizon: ``H``, the number of imagined steps per action sequence (>= 1).
      action_low: ``A`` lower bounds (a sequence of floats; stored as a tuple).
      action_high: ``A`` upper bounds, each ``>= action_low``; every bound within
        ``+-MAX_ACTION_BOUND`` (``1e15``).
    """

    horizon: int
    action_low: Sequence[float]
    action_high: Sequence[float]

    def __post_init__(self):
        check_positive_int("horizon", self.horizon)
        low = as_float_tuple("action_low", self.action_low)
        high = as_float_tuple("action_high", self.action_high)
        if len(low) != len(high):
            raise ValueError(
                f"action_low and action_high must have the same length, got {len(low)} "
                f"and {len(high)}"
            )
        bad = [i for i, (lo, hi) in enumerate(zip(low, high, strict=True)) if lo > hi]
        if bad:
            raise ValueError(f"action_low must be <= action_high, violated at indices {bad}")
        if any(abs(b) > MAX_ACTION_BOUND for b in low + high):
            raise ValueError(
                f"action_low and action_high must lie within +-{MAX_ACTION_BOUND:g}, got "
                f"{low} and {high}"
            )
        object.__setattr__(self, "action_low", low)
        object.__setattr__(self, "action_high", high)

    @property
    def action_dim(self) -> int:
        """``A``, the action size."""
        return len(self.action_low)

    def bounds(self) -> tuple[Array, Array]:
        """The bounds as ``([A] float32, [A] float32)`` arrays."""
        return (
            jnp.asarray(self.action_low, jnp.float32),
            jnp.asarray(self.action_high, jnp.float32),
        )

    def midpoint_plan(self) -> Array:
        """``[H, A] float32``: the bounds' midpoint at every step (the neutral plan)."""
        low, high = self.bounds()
        return jnp.broadcast_to((low + high) / 2, (self.horizon, self.action_dim))


@dataclasses.dataclass(frozen=True)
class GaussianPlannerConfig(ContinuousPlannerConfig):
    """A continuous planner that searches with a Gaussian over action sequences (CEM, iCEM),
    whose initial standard deviation is a fraction of the action range.

    Attributes:
      init_std_fraction: the initial standard deviation as a fraction of ``high - low``
        (> 0; mbrl-lib 0.25, the variance ``(high - low)**2 / 16``). Each subclass sets its
        own default. Keyword-only, so that a subclass's own fields keep their positions
        after the bounds.
    """

    init_std_fraction: float = dataclasses.field(default=0.25, kw_only=True)

    def __post_init__(self):
        super().__post_init__()
        check_positive_float("init_std_fraction", self.init_std_fraction)

    def initial_std(self) -> Array:
        """``[H, A] float32``: ``init_std_fraction * (high - low)``."""
        low, high = self.bounds()
        return jnp.broadcast_to(
            self.init_std_fraction * (high - low), (self.horizon, self.action_dim)
        )


def shift_sequence(seq: Array, fill: Array) -> Array:
    """Move a plan one step forward in time and refill the last step.

    Args:
      seq: ``[H, ...]`` a per-step array (actions, means, standard deviations).
      fill: ``[...]`` the value for the new last step (broadcast).

    Returns:
      ``[H, ...]``: ``seq[1:]`` followed by ``fill``.
    """
    fill = jnp.broadcast_to(jnp.asarray(fill, seq.dtype), seq.shape[1:])
    return jnp.concatenate([seq[1:], fill[None]], axis=0)


def clip_to_bounds(actions: Array, low: Array, high: Array) -> Array:
    """Clip ``[..., A]`` actions into ``[low, high]`` (``[A]`` each)."""
    return jnp.clip(actions, low, high)


def clip_broadcast(actions: Array, low: Array, high: Array) -> Array:
    """Clip ``[..., A]`` actions into ``[low, high]`` (``[A]`` each), broadcasting explicitly.

    The same as :func:`clip_to_bounds` but safe under ``jax_numpy_rank_promotion="raise"``.
    """
    return jnp.clip(
        actions, jnp.broadcast_to(low, actions.shape), jnp.broadcast_to(high, actions.shape)
    )


def evaluate(objective: Objective, key: PRNGKey, actions: Array) -> Array:
    """Score ``actions [N, H, A]`` with ``objective`` and sanitize; returns ``[N] float32``.

    Checks the objective's output shape at trace time so a wrong objective fails with a
    clear message instead of a broadcasting error deep inside a planner.
    """
    returns = objective(key, actions)
    n = actions.shape[0]
    if getattr(returns, "shape", None) != (n,):
        raise ValueError(
            f"objective must return one score per sequence, shape ({n},); got "
            f"{getattr(returns, 'shape', type(returns))}"
        )
    return sanitize_returns(returns)


def select_best(returns: Array, candidates: Array) -> tuple[Array, Array]:
    """Return ``(candidates[argmax], returns[argmax])`` for ``[N, ...]`` candidates.

    With every return ``-inf`` the first candidate is chosen, so the result stays finite
    whenever the candidates are.
    """
    best = jnp.argmax(returns)
    return candidates[best], returns[best]


__all__ = [
    "MAX_ACTION_BOUND",
    "ContinuousPlannerConfig",
    "GaussianPlannerConfig",
    "PlanInfo",
    "PlanState",
    "Planner",
    "clip_broadcast",
    "clip_to_bounds",
    "evaluate",
    "sanitize_returns",
    "select_best",
    "shift_sequence",
]
