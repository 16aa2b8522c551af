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

from collections.abc import Callable
from typing import Any

import jax

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
