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
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
from flax import struct

from jaxmbrl.types import Array, Objective, PRNGKey

PlanState = Any


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


def _as_float_tuple(name: str, value: Any) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except TypeError as e:
        raise ValueError(f"{name} must be a sequence of floats, got {value!r}") from e
    if not out:
        raise ValueError(f"{name} must not be empty")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def check_positive_int(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an ``int >= 1``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_at_most(name: str, value: int, limit_name: str, limit: int) -> None:
    """Raise ``ValueError`` naming both fields unless ``value <= limit`` (e.g. elites and
    population)."""
    if value > limit:
        raise ValueError(f"{name} ({value}) must be <= {limit_name} ({limit})")


def check_range(name: str, value: Any, low: float, high: float, *, low_open=False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``low <= value <= high`` (or ``<``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (low < value if low_open else low <= value) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")


def check_positive_float(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite real number ``> 0``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_fraction(name: str, value: Any, *, high_open: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``0 <= value <= 1`` (``< 1`` if open)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and 0 <= value and (value < 1 if high_open else value <= 1)
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must be in [0, 1{bracket}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ContinuousPlannerConfig:
    """Fields every continuous-action planner shares; subclasses add their own.

    Attributes:
      horizon: ``H``, the number of imagined steps per action sequence (>= 1).
      action_low: ``A`` lower bounds (a sequence of floats; stored as a tuple).
      action_high: ``A`` upper bounds, each ``>= action_low``.
    """

    horizon: int
    action_low: Sequence[float]
    action_high: Sequence[float]

    def __post_init__(self):
        check_positive_int("horizon", self.horizon)
        low = _as_float_tuple("action_low", self.action_low)
        high = _as_float_tuple("action_high", self.action_high)
        if len(low) != len(high):
            raise ValueError(
                f"action_low and action_high must have the same length, got {len(low)} "
                f"and {len(high)}"
            )
        bad = [i for i, (lo, hi) in enumerate(zip(low, high, strict=True)) if lo > hi]
        if bad:
            raise ValueError(f"action_low must be <= action_high, violated at indices {bad}")
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


def sanitize_returns(returns: Array) -> Array:
    """Map non-finite returns to ``-inf`` so a diverging rollout can never be chosen.

    Args:
      returns: ``[N] float`` returns.

    Returns:
      ``[N] float32`` with NaN and +-inf replaced by ``-inf``.
    """
    returns = returns.astype(jnp.float32)
    return jnp.where(jnp.isfinite(returns), returns, -jnp.inf)


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
    "ContinuousPlannerConfig",
    "PlanInfo",
    "PlanState",
    "Planner",
    "check_at_most",
    "check_fraction",
    "check_positive_float",
    "check_positive_int",
    "check_range",
    "clip_broadcast",
    "clip_to_bounds",
    "evaluate",
    "sanitize_returns",
    "select_best",
    "shift_sequence",
]
