"""Random-action data from any gymnax environment, for model training, tests and examples."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from jaxmbrl.types import Array, PRNGKey


class Transitions(NamedTuple):
    """Transitions with leading axes ``[J, T]`` (or ``[L] = [J * T]`` after :func:`flatten`).

    Attributes:
      obs: ``[..., O] float32``.
      action: ``[..., A] float32`` (continuous) or ``[...] int32`` (discrete).
      next_obs: ``[..., O] float32``.
      reward: ``[...] float32``.
      terminated: ``[...] bool`` (steps after a termination are still simulated: the
        environment's ``step_env`` does not reset).
    """

    obs: Array
    action: Array
    next_obs: Array
    reward: Array
    terminated: Array


def random_episodes(
    env: Any, env_params: Any, key: PRNGKey, num_episodes: int, num_steps: int
) -> Transitions:
    """``J = num_episodes`` episodes of ``T = num_steps`` uniformly random actions.

    Each episode starts from ``env.reset_env`` and steps with ``env.step_env`` (pure
    dynamics, no auto-reset), so every episode holds exactly ``T`` consecutive transitions.
    Continuous actions are uniform in the ``Box`` bounds, discrete ones uniform over the
    ``Discrete`` indices. Pure; wrap it in ``jax.jit`` (with ``env`` closed over) to compile.

    Returns:
      :class:`Transitions` with leading axes ``[J, T]``.
    """
    space = env.action_space(env_params)

    def sample_actions(key):
        if isinstance(space, spaces.Discrete):
            return jax.random.randint(key, (num_steps,), 0, space.n)
        shape = (num_steps, *(tuple(space.shape) or (1,)))
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape[1:])
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape[1:])
        return jax.random.uniform(key, shape, jnp.float32, low, high)

    def episode(key):
        k_reset, k_act, k_steps = jax.random.split(key, 3)
        obs, state = env.reset_env(k_reset, env_params)

        def step(carry, inp):
            o, s = carry
            k, a = inp
            o2, s2, r, done, _ = env.step_env(k, s, a, env_params)
            out = (o, a, o2, jnp.asarray(r, jnp.float32).reshape(()), jnp.asarray(done, bool))
            return (o2, s2), out

        inputs = (jax.random.split(k_steps, num_steps), sample_actions(k_act))
        return Transitions(*jax.lax.scan(step, (obs, state), inputs)[1])

    return jax.vmap(episode)(jax.random.split(key, num_episodes))


def flatten(transitions: Transitions) -> Transitions:
    """Merge the leading ``[J, T]`` axes into one ``[L] = [J * T]`` axis."""
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), transitions)
