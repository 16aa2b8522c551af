"""jaxmbrl: a JAX-accelerated, vectorized planning engine for model-based RL."""

from jaxmbrl import envs, planners, rollouts, types
from jaxmbrl.planners import PlanInfo, Planner, RandomShootingConfig, random_shooting
from jaxmbrl.rollouts import make_objective, rollout_return

__version__ = "0.1.0"

__all__ = [
    "PlanInfo",
    "Planner",
    "RandomShootingConfig",
    "envs",
    "make_objective",
    "planners",
    "random_shooting",
    "rollout_return",
    "rollouts",
    "types",
]
