"""Algorithms as pure functions: ``make_<algorithm>(config)`` returns a NamedTuple of them."""

from jaxmbrl.agents.pets import PETS, PETSConfig, PETSState, make_pets, pets_setup

__all__ = ["PETS", "PETSConfig", "PETSState", "make_pets", "pets_setup"]
