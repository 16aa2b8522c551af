"""Planners: factories returning a :class:`~jaxmbrl.planners.base.Planner` of pure functions."""

from jaxmbrl.planners.base import ContinuousPlannerConfig, Planner, PlanInfo
from jaxmbrl.planners.random_shooting import (
    RandomShootingConfig,
    RandomShootingState,
    random_shooting,
)

__all__ = [
    "ContinuousPlannerConfig",
    "PlanInfo",
    "Planner",
    "RandomShootingConfig",
    "RandomShootingState",
    "random_shooting",
]
