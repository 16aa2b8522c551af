"""Environments: gymnax by name, the lesson's point mass, and true dynamics as a model."""

from jaxmbrl.envs.data import Transitions, flatten, random_episodes
from jaxmbrl.envs.gymnax_adapter import make, registered_names, true_dynamics
from jaxmbrl.envs.point_mass import PointMass

__all__ = [
    "PointMass",
    "Transitions",
    "flatten",
    "make",
    "random_episodes",
    "registered_names",
    "true_dynamics",
]
