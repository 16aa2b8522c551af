"""The environment layer's two records: what an environment *is* and what it *does*.

* :class:`EnvSpec` (data, hashable): observation size, action space, episode length, action
  repeat, name.
  It is made once from an environment, and everything above the environment layer
  (planners, models, agents) sizes itself from it, so no layer above imports an
  environment library.
* :class:`Environment` (functions only, pure): ``reset``, ``step``, ``sample_action``,
  ``oracle_objective`` and the known reward and termination functions -- one environment
  family's dynamics behind one interface. One adapter per family builds both
  (:func:`jaxmbrl.envs.gymnax_adapter.load` for gymnax and user environments with gymnax's
  interface, :mod:`jaxmbrl.envs.brax_style` for MuJoCo Playground and Brax).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from jaxmbrl import validation
from jaxmbrl.types import (
    ActionSpace,
    Array,
    Objective,
    PRNGKey,
    PyTree,
    RewardFn,
    TerminationFn,
)


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """Static description of an environment (hashable).

    Attributes:
      name: the name it was loaded by (``"Pendulum-v1"``, ``"module:function"``).
      obs_dim: ``O``, the flat observation size.
      action: the :class:`~jaxmbrl.types.ActionSpace` (bounds or ``D``).
      episode_length: ``T``, real steps per episode (the environment's time limit unless
        overridden). A real step is one call of ``Environment.step``, which with an action
        repeat is ``action_repeat`` steps of the underlying environment.
      action_repeat: how many underlying steps one ``Environment.step`` applies its action
        for (>= 1; 1 means none). Recorded for results; the ``Environment`` already does it.
      ctrl_dt: seconds of simulated time per underlying step, when the family knows it
        (MuJoCo Playground, Brax), else ``None``; a real step lasts
        ``action_repeat * ctrl_dt``.
    """

    name: str
    obs_dim: int
    action: ActionSpace
    episode_length: int
    action_repeat: int = 1
    ctrl_dt: float | None = None

    def __post_init__(self):
        validation.check_positive_int("obs_dim", self.obs_dim)
        validation.check_positive_int("episode_length", self.episode_length)
        validation.check_positive_int("action_repeat", self.action_repeat)
        if self.ctrl_dt is not None:
            validation.check_positive_float("ctrl_dt", self.ctrl_dt)
        if not isinstance(self.action, ActionSpace):
            raise ValueError(f"action must be an ActionSpace, got {type(self.action).__name__}")


class Environment(NamedTuple):
    """One environment's pure functions (closed over its parameters; no data fields).

    Attributes:
      reset: ``key -> (obs [O], env_state)``.
      step: ``(key, env_state, action) -> (next_obs [O], env_state, reward [] float32,
        done [] bool)``; no automatic reset. ``action`` is ``[A] float32`` or ``[] int32``.
      sample_action: ``key -> action``, uniform over the action space.
      oracle_objective: ``(env_state, gamma, chunk_size) -> objective``: scores ``[N, H, A]``
        sequences by rolling out the true dynamics from ``env_state`` (the perfect model).
      reward_fn: the known reward ``(obs [O], action, next_obs [O]) -> [] float32`` on
        observations, or ``None`` (then a model must learn it).
      termination_fn: the known termination ``(obs, action, next_obs) -> [] bool``, or
        ``None``.
    """

    reset: Callable[[PRNGKey], tuple[Array, PyTree]]
    step: Callable[[PRNGKey, PyTree, Array], tuple[Array, PyTree, Array, Array]]
    sample_action: Callable[[PRNGKey], Array]
    oracle_objective: Callable[[PyTree, float, int | None], Objective]
    reward_fn: RewardFn | None = None
    termination_fn: TerminationFn | None = None


__all__ = ["EnvSpec", "Environment"]
