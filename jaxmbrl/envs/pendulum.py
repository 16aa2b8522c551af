"""Pendulum-v1 variants for lessons and experiments (gymnax's dynamics, reward, observations).

:class:`HangingPendulum` starts every episode near hanging down at rest, the hard start for
a swing-up planner (gymnax's own reset draws the angle from the whole circle).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from gymnax.environments.classic_control.pendulum import EnvState, Pendulum


class HangingPendulum(Pendulum):
    """Pendulum-v1 whose episodes start near hanging down at rest.

    ``theta = pi + U(-w, w)`` and ``theta_dot = U(-w, w)`` with ``w = start_width``.
    Dynamics, reward and observations are gymnax's.
    """

    def __init__(self, start_width: float):
        super().__init__()
        self.start_width = start_width

    def reset_env(self, key: jax.Array, params) -> tuple[jax.Array, EnvState]:
        k_theta, k_speed = jax.random.split(key)
        w = self.start_width
        theta = jnp.pi + jax.random.uniform(k_theta, (), jnp.float32, -w, w)
        speed = jax.random.uniform(k_speed, (), jnp.float32, -w, w)
        state = EnvState(theta=theta, theta_dot=speed, last_u=jnp.float32(0.0), time=0)
        return self.get_obs(state), state


__all__ = ["HangingPendulum"]
