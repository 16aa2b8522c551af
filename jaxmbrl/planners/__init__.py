"""Planners: factories returning a :class:`~jaxmbrl.planners.base.Planner` of pure functions."""

from jaxmbrl.planners.base import (
    ContinuousPlannerConfig,
    GaussianPlannerConfig,
    PlanInfo,
    Planner,
)
from jaxmbrl.planners.cem import (
    MBRL_LIB_OPTIONS,
    MBRL_LIB_STEP,
    CEMConfig,
    CEMState,
    cem,
    cem_update,
)
from jaxmbrl.planners.discrete import (
    DiscreteCEMConfig,
    DiscreteCEMState,
    DiscretePlannerConfig,
    DiscreteRandomShootingConfig,
    DiscreteRandomShootingState,
    discrete_cem,
    discrete_cem_update,
    discrete_random_shooting,
)
from jaxmbrl.planners.icem import ICEMConfig, ICEMState, colored_noise, icem
from jaxmbrl.planners.mppi import MPPIConfig, MPPIState, mppi, mppi_update
from jaxmbrl.planners.random_shooting import (
    RandomShootingConfig,
    RandomShootingState,
    random_shooting,
)

__all__ = [
    "MBRL_LIB_OPTIONS",
    "MBRL_LIB_STEP",
    "CEMConfig",
    "CEMState",
    "ContinuousPlannerConfig",
    "DiscreteCEMConfig",
    "DiscreteCEMState",
    "DiscretePlannerConfig",
    "DiscreteRandomShootingConfig",
    "DiscreteRandomShootingState",
    "GaussianPlannerConfig",
    "ICEMConfig",
    "ICEMState",
    "MPPIConfig",
    "MPPIState",
    "PlanInfo",
    "Planner",
    "RandomShootingConfig",
    "RandomShootingState",
    "cem",
    "cem_update",
    "colored_noise",
    "discrete_cem",
    "discrete_cem_update",
    "discrete_random_shooting",
    "icem",
    "mppi",
    "mppi_update",
    "random_shooting",
]
