"""jaxmbrl: a JAX-accelerated, vectorized planning engine for model-based RL."""

# ruff: noqa: E402 (the CPU dot library is chosen before the submodules are imported)

import os as _os

# XLA:CPU's dot library is fixed when JAX's backend starts, so it is chosen before any
# submodule import can make an array (gymnax's does): $JAXMBRL_CPU_DOT, default "auto".
from jaxmbrl import cpu_dot

cpu_dot.use(_os.environ.get(cpu_dot.ENV_VAR, "").strip().lower() or "auto")

from jaxmbrl import (
    agents,
    buffer,
    envs,
    experiments,
    models,
    mpc,
    planners,
    reporting,
    rollouts,
    runner,
    sharding,
    types,
    validation,
)
from jaxmbrl.agents.pets import PETSConfig, make_pets
from jaxmbrl.envs import Environment, EnvSpec
from jaxmbrl.envs.gymnax_adapter import oracle_objective
from jaxmbrl.models import ModelSpec
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
from jaxmbrl.planners.registry import PlannerSpec
from jaxmbrl.rollouts import (
    RolloutConfig,
    make_objective,
    make_particle_objective,
    rollout_return,
)
from jaxmbrl.types import ActionSpace

__version__ = "0.1.0"

__all__ = [
    "ActionSpace",
    "CEMConfig",
    "EnvSpec",
    "Environment",
    "ICEMConfig",
    "MPPIConfig",
    "ModelSpec",
    "PETSConfig",
    "PlanInfo",
    "Planner",
    "PlannerSpec",
    "RandomShootingConfig",
    "RolloutConfig",
    "agents",
    "buffer",
    "cem",
    "cpu_dot",
    "envs",
    "experiments",
    "icem",
    "make_objective",
    "make_particle_objective",
    "make_pets",
    "models",
    "mpc",
    "mppi",
    "oracle_objective",
    "planners",
    "random_shooting",
    "reporting",
    "rollout_return",
    "rollouts",
    "runner",
    "sharding",
    "types",
    "validation",
]
