"""jaxmbrl: a JAX-accelerated, vectorized planning engine for model-based RL."""

from jaxmbrl import agents, buffer, envs, models, planners, rollouts, sharding, types
from jaxmbrl.agents.pets import PETSConfig, make_pets
from jaxmbrl.planners import (
    CEMConfig,
    ICEMConfig,
    MPPIConfig,
    PlanInfo,
    Planner,
    RandomShootingConfig,
    cem,
    icem,
    mppi,
    random_shooting,
)
from jaxmbrl.rollouts import (
    RolloutConfig,
    make_objective,
    make_particle_objective,
    oracle_objective,
    rollout_return,
)

__version__ = "0.1.0"

__all__ = [
    "CEMConfig",
    "ICEMConfig",
    "MPPIConfig",
    "PETSConfig",
    "PlanInfo",
    "Planner",
    "RandomShootingConfig",
    "RolloutConfig",
    "agents",
    "buffer",
    "cem",
    "envs",
    "icem",
    "make_objective",
    "make_particle_objective",
    "make_pets",
    "models",
    "mppi",
    "oracle_objective",
    "planners",
    "random_shooting",
    "rollout_return",
    "rollouts",
    "sharding",
    "types",
]
