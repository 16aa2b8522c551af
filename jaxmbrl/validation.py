"""Checks at the library's boundaries, and return sanitising: the leaf every layer imports.

The ``check_*`` helpers validate configuration values in ``__post_init__`` and at public
entry points, before anything is traced, and raise ``ValueError`` naming the field.
:func:`sanitize_returns` is the one rule for non-finite scores: they become ``-inf`` so a
diverging rollout can never be chosen. This module imports nothing from jaxmbrl.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def is_real(value: Any) -> bool:
    """``True`` for a Python ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Sizes become array shapes and int32 indices, and continuous settings become float32 values:
# a Python number beyond these ranges passes a plain ``int``/``float`` check but then fails deep
# inside JAX (a shape that does not fit) or turns into 0 or inf in float32 (and NaN later).
INT32_MAX = 2**31 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # smallest normal; XLA:CPU flushes smaller to 0


def check_positive_int(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an ``int`` in
    ``[1, 2**31 - 1]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= INT32_MAX:
        raise ValueError(f"{name} must be an integer >= 1 (and <= 2**31 - 1), got {value!r}")


def check_bool(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a ``bool`` (a string such as
    ``"false"`` would otherwise count as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")


def check_at_most(name: str, value: int, limit_name: str, limit: int) -> None:
    """Raise ``ValueError`` naming both fields unless ``value <= limit`` (e.g. elites and
    population)."""
    if value > limit:
        raise ValueError(f"{name} ({value}) must be <= {limit_name} ({limit})")


def check_range(name: str, value: Any, low: float, high: float, *, low_open=False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``low <= value <= high`` (or ``<``)."""
    ok = is_real(value) and (low < value if low_open else low <= value) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")


def check_positive_float(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a real number ``> 0`` that is
    a normal float32 (``1.2e-38`` to ``3.4e38``): smaller ones become 0 in float32, larger
    ones inf."""
    if not (is_real(value) and FLOAT32_TINY <= value <= FLOAT32_MAX):
        raise ValueError(
            f"{name} must be a finite number > 0 within float32's normal range "
            f"[{FLOAT32_TINY:.3g}, {FLOAT32_MAX:.3g}], got {value!r}"
        )


def check_finite(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite real number."""
    if not (is_real(value) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_fraction(name: str, value: Any, *, high_open: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``0 <= value <= 1`` (``< 1`` if open)."""
    ok = is_real(value) and 0 <= value and (value < 1 if high_open else value <= 1)
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must be in [0, 1{bracket}, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def as_float_tuple(name: str, value: Any) -> tuple[float, ...]:
    """``value`` as a non-empty tuple of floats finite in float32, or ``ValueError`` naming
    ``name``."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError) as e:  # ValueError: float("x")
        raise ValueError(f"{name} must be a sequence of floats, got {value!r}") from e
    if not out:
        raise ValueError(f"{name} must not be empty")
    if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in out):
        raise ValueError(f"{name} must be finite (in float32), got {out}")
    return out


def sanitize_returns(returns: Array) -> Array:
    """Map non-finite returns to ``-inf`` so a diverging rollout can never be chosen.

    Args:
      returns: ``[N] float`` returns (any shape works).

    Returns:
      ``float32`` of the same shape with NaN and +-inf replaced by ``-inf``.
    """
    returns = returns.astype(jnp.float32)
    return jnp.where(jnp.isfinite(returns), returns, -jnp.inf)


__all__ = [
    "FLOAT32_MAX",
    "FLOAT32_TINY",
    "INT32_MAX",
    "as_float_tuple",
    "check_at_most",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_fraction",
    "check_positive_float",
    "check_positive_int",
    "check_range",
    "is_real",
    "sanitize_returns",
]
