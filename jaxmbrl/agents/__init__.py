"""Agents: whole control loops compiled as ``lax.scan``, seeds as a ``vmap`` axis."""

from jaxmbrl.agents.mpc import EpisodeResult, ObjectiveFactory, run_episode, run_seeds

__all__ = ["EpisodeResult", "ObjectiveFactory", "run_episode", "run_seeds"]
