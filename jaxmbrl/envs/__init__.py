"""Environments: one spec and one record of pure functions per family (gymnax today).

``load(name)`` returns ``(EnvSpec, Environment)``: what the environment is (sizes, action
space, episode length) and what it does (reset, step, random actions, the true dynamics as
an objective, known rewards). ``make(name)`` returns gymnax's own ``(env, env_params)``.
"""

from jaxmbrl.envs.data import Transitions, flatten, random_episodes
from jaxmbrl.envs.gymnax_adapter import load, make, registered_names, true_dynamics
from jaxmbrl.envs.point_mass import PointMass
from jaxmbrl.envs.spec import Environment, EnvSpec

__all__ = [
    "EnvSpec",
    "Environment",
    "PointMass",
    "Transitions",
    "flatten",
    "load",
    "make",
    "random_episodes",
    "registered_names",
    "true_dynamics",
]
