"""Shared types and the shape legend used in every docstring of jaxmbrl.

Shape legend (one letter per axis, one meaning each, the same everywhere in the project):

=====  ===================================================================================
``B``  batch of independent items (start states, environments)
``S``  seeds (a ``vmap`` axis over whole experiments or episodes)
``N``  candidate action sequences scored in one planner iteration
``K``  elite sequences of a planner (CEM, iCEM)
``H``  planning horizon (imagined time steps)
``P``  particles per candidate sequence
``Q``  particle slots per candidate (``P`` rounded up to a multiple of ``G``)
``C``  candidates per chunk of an objective (``chunk_size``)
``E``  ensemble members
``G``  elite ensemble members that propagate particles (one row group each)
``R``  rows of one member's group in a grouped model call
``O``  observation size
``A``  action size (continuous) -- discrete actions are ``[]`` int32 indices
``D``  number of discrete actions
``T``  real time steps (an episode)
``J``  episodes of an experiment
``L``  transitions in a data set (rows of the buffer, training data)
``V``  held-out validation transitions
``M``  minibatch size
``U``  training epochs
``X``  model input size (``O + A``)
``Y``  model target size (``O``, plus 1 when the reward is learned)
``F``  feature size of a normaliser (``X`` or ``Y``)
=====  ===================================================================================

Shapes are written in docstrings as ``[N, H, A] float32``; ``[]`` is a scalar.

The core contracts
------------------
* **Dynamics step** (:data:`DynamicsStep`): a pure function
  ``(params, key, state, action) -> (next_state, reward)`` for *one* unbatched item
  (callers ``vmap``). ``state`` is any pytree: an observation vector ``[O]`` for a learned
  model, a gymnax ``EnvState`` for the true ``step_env``. ``reward`` is ``[] float32``.
* **Reward / termination functions** (:data:`RewardFn`, :data:`TerminationFn`) take
  ``(obs, action, next_obs)`` for one item and return ``[] float32`` / ``[] bool``.
* **Objective** (:data:`Objective`): ``(key, actions [N, H, A]) -> returns [N] float32``. It
  scores a batch of action sequences; the key feeds any sampling inside (particles, model
  noise). Objectives may close over traced values (model parameters, the current
  observation). Deterministic objectives ignore the key.
* **Planner**: see :mod:`jaxmbrl.planners.base`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from jaxmbrl import validation

Array = jax.Array
PRNGKey = jax.Array
PyTree = Any

DynamicsStep = Callable[[PyTree, PRNGKey, PyTree, Array], tuple[PyTree, Array]]
"""``(params, key, state, action) -> (next_state, reward [] float32)``, one item."""

RewardFn = Callable[[Array, Array, Array], Array]
"""``(obs [O], action [A], next_obs [O]) -> reward [] float32``, one item."""

TerminationFn = Callable[[Array, Array, Array], Array]
"""``(obs [O], action [A], next_obs [O]) -> terminated [] bool``, one item."""

Objective = Callable[[PRNGKey, Array], Array]
"""``(key, actions [N, H, A]) -> returns [N] float32``."""


@dataclasses.dataclass(frozen=True)
class ActionSpace:
    """The actions a planner may choose: a box of ``A`` bounds, or ``D`` discrete actions.

    Planners see actions only through this record (never an environment library's space).
    Build it with :meth:`box` or :meth:`discrete`.

    Attributes:
      low: ``A`` lower bounds (a box), or ``None`` (discrete).
      high: ``A`` upper bounds, each ``>= low`` (a box), or ``None``.
      num_actions: ``D >= 1`` (discrete), or ``None`` (a box).
    """

    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    num_actions: int | None = None

    def __post_init__(self):
        if self.num_actions is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("an ActionSpace is a box (low, high) or discrete, not both")
            validation.check_positive_int("num_actions", self.num_actions)
            return
        if self.low is None or self.high is None:
            raise ValueError("an ActionSpace needs low and high (a box) or num_actions")
        low = validation.as_float_tuple("action_low", self.low)
        high = validation.as_float_tuple("action_high", self.high)
        if len(low) != len(high):
            raise ValueError(
                f"action_low and action_high must have the same length, got {len(low)} "
                f"and {len(high)}"
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def box(cls, low, high) -> ActionSpace:
        """Continuous actions ``[A] float32`` in ``[low, high]`` (sequences of ``A`` floats)."""
        return cls(low=tuple(low), high=tuple(high))

    @classmethod
    def discrete(cls, num_actions: int) -> ActionSpace:
        """Discrete actions ``[] int32`` in ``0..D-1``."""
        return cls(num_actions=num_actions)

    @property
    def is_discrete(self) -> bool:
        return self.num_actions is not None

    @property
    def model_dim(self) -> int:
        """The action's size as a model input: ``A`` (a box) or ``D`` (one-hot)."""
        return self.num_actions if self.is_discrete else len(self.low)
