"""Planners by name for an action space: what the command line and the agents use.

``make_planner("cem", space, horizon=30, num_samples=350)`` picks the continuous or discrete
variant from a gymnax action space, builds its validated config and returns
``(planner, config)``. Library users who know their planner call its factory directly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from gymnax.environments import spaces

from jaxmbrl.planners.base import Planner
from jaxmbrl.planners.cem import CEMConfig, cem
from jaxmbrl.planners.discrete import (
    DiscreteCEMConfig,
    DiscreteRandomShootingConfig,
    discrete_cem,
    discrete_random_shooting,
)
from jaxmbrl.planners.icem import ICEMConfig, icem
from jaxmbrl.planners.mppi import MPPIConfig, mppi
from jaxmbrl.planners.random_shooting import RandomShootingConfig, random_shooting

CONTINUOUS = {
    "random": (RandomShootingConfig, random_shooting),
    "cem": (CEMConfig, cem),
    "icem": (ICEMConfig, icem),
    "mppi": (MPPIConfig, mppi),
}
DISCRETE = {
    "random": (DiscreteRandomShootingConfig, discrete_random_shooting),
    "cem": (DiscreteCEMConfig, discrete_cem),
}


def planner_names(space: Any | None = None) -> tuple[str, ...]:
    """The planner names available for ``space`` (all names when ``None``)."""
    if isinstance(space, spaces.Discrete):
        return tuple(DISCRETE)
    return tuple(CONTINUOUS)


def action_bounds(space: spaces.Box) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(low, high)`` of a gymnax ``Box`` as flat tuples of ``A`` floats."""
    shape = tuple(space.shape) or (1,)
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape).reshape(-1)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape).reshape(-1)
    return tuple(float(v) for v in low), tuple(float(v) for v in high)


def make_planner(name: str, space: Any, *, horizon: int, **options: Any) -> tuple[Planner, Any]:
    """Build planner ``name`` for a gymnax action space.

    Args:
      name: ``"random"``, ``"cem"``, ``"icem"`` or ``"mppi"`` (continuous spaces);
        ``"random"`` or ``"cem"`` (discrete spaces: per-step categorical distributions).
      space: a gymnax ``spaces.Box`` or ``spaces.Discrete``.
      horizon: ``H``.
      **options: fields of the planner's config (``num_samples``, ``num_elites``, ...).
        Options that the chosen config does not have are ignored only when their value is
        ``None``; otherwise they are an error.

    Returns:
      ``(planner, config)``.

    Raises:
      ValueError: unknown name, unsupported space, an option the planner does not take, or
        an invalid configuration (the message names the field).
    """
    if isinstance(space, spaces.Discrete):
        table, common = DISCRETE, {"num_actions": int(space.n)}
    elif isinstance(space, spaces.Box):
        low, high = action_bounds(space)
        table, common = CONTINUOUS, {"action_low": low, "action_high": high}
    else:
        raise ValueError(f"unsupported action space {type(space).__name__}")
    if name not in table:
        kind = "discrete" if table is DISCRETE else "continuous"
        raise ValueError(
            f"unknown planner {name!r} for a {kind} action space; choose from {', '.join(table)}"
        )
    config_cls, factory = table[name]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    extra = sorted(k for k, v in options.items() if k not in fields and v is not None)
    if extra:
        raise ValueError(f"planner {name!r} does not take {', '.join(extra)}")
    kwargs = {k: v for k, v in options.items() if k in fields and v is not None}
    config = config_cls(horizon=horizon, **common, **kwargs)
    return factory(config), config
