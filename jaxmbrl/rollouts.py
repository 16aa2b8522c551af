"""Imagined rollouts: turn a dynamics step into an objective that planners can maximise.

A dynamics step (see :mod:`jaxmbrl.types`) advances one item; this module rolls it over an
action sequence with ``lax.scan`` and over candidates with ``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmbrl.types import Array, DynamicsStep, Objective, PRNGKey, PyTree, TerminationFn


def rollout_return(
    dynamics: DynamicsStep,
    params: PyTree,
    key: PRNGKey,
    state: PyTree,
    actions: Array,
    *,
    gamma: float = 1.0,
    termination_fn: TerminationFn | None = None,
) -> Array:
    """Discounted return of one action sequence from one start state.

    Args:
      dynamics: ``(params, key, state, action) -> (next_state, reward)``.
      params: the dynamics' parameters (model weights, gymnax ``EnvParams``).
      key: PRNG key, split once per step.
      state: start state, any pytree.
      actions: ``[H, A]`` (or ``[H]`` for discrete actions).
      gamma: discount; the reward of step ``t`` (0-based) is weighted by ``gamma**t``.
      termination_fn: optional ``(state, action, next_state) -> [] bool``; no reward is
        collected after the step on which it first returns ``True``.

    Returns:
      ``[] float32`` the discounted return.
    """
    keys = jax.random.split(key, actions.shape[0])

    def step(carry, inp):
        s, alive, discount, total = carry
        k, a = inp
        s_next, r = dynamics(params, k, s, a)
        total = total + alive * discount * r.astype(jnp.float32)
        if termination_fn is not None:
            alive = alive * (1.0 - termination_fn(s, a, s_next).astype(jnp.float32))
        return (s_next, alive, discount * gamma, total), None

    init = (state, jnp.float32(1.0), jnp.float32(1.0), jnp.float32(0.0))
    (_, _, _, total), _ = jax.lax.scan(step, init, (keys, actions))
    return total


def make_objective(
    dynamics: DynamicsStep,
    params: PyTree,
    state: PyTree,
    *,
    gamma: float = 1.0,
    termination_fn: TerminationFn | None = None,
) -> Objective:
    """An objective scoring ``[N, H, A]`` sequences by their return from ``state``.

    Every candidate gets its own key. The returned function may be called inside ``jit``;
    ``params`` and ``state`` may be traced values.

    Returns:
      ``objective(key, actions [N, H, A]) -> [N] float32``.
    """

    def objective(key: PRNGKey, actions: Array) -> Array:
        keys = jax.random.split(key, actions.shape[0])
        return jax.vmap(
            lambda k, a: rollout_return(
                dynamics, params, k, state, a, gamma=gamma, termination_fn=termination_fn
            )
        )(keys, actions)

    return objective
