"""Environments: one spec and one record of pure functions per family.

``load(name)`` returns ``(EnvSpec, Environment)``: what the environment is (sizes, action
space, episode length, action repeat) and what it does (reset, step, random actions, the
true dynamics as an objective, known rewards); for ``gymnasium:...``, which steps on the
host, ``(EnvSpec, HostEnvironment)`` instead. The name's prefix picks the family
(:mod:`jaxmbrl.envs.families`): ``playground:CheetahRun`` and ``brax:halfcheetah`` (MuJoCo
physics, the optional ``mujoco`` extra, imported only then), ``gymnasium:...``, or gymnax
(``Pendulum-v1``, ``module:function``). ``make(name)`` returns gymnax's own
``(env, env_params)``.
"""

from jaxmbrl.envs.data import Transitions, flatten, random_episodes
from jaxmbrl.envs.families import load
from jaxmbrl.envs.gymnax_adapter import make, registered_names, true_dynamics
from jaxmbrl.envs.host import HostEnvironment
from jaxmbrl.envs.point_mass import PointMass
from jaxmbrl.envs.spec import Environment, EnvSpec

__all__ = [
    "EnvSpec",
    "Environment",
    "HostEnvironment",
    "PointMass",
    "Transitions",
    "flatten",
    "load",
    "make",
    "random_episodes",
    "registered_names",
    "true_dynamics",
]
