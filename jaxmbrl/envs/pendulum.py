"""Pendulum-v1 variants for lessons and experiments (gymnax's dynamics, reward, observations).

:class:`HangingPendulum` starts every episode near hanging down at rest, the hard start for
a swing-up planner (gymnax's own reset draws the angle from the whole circle).
:func:`uniform_transitions` draws one-step transitions from states spread over the whole
phase space (data no episode of random actions would visit).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from gymnax.environments.classic_control.pendulum import EnvState, Pendulum

from jaxmbrl.envs.data import Transitions


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


def uniform_transitions(env_params, key: jax.Array, num: int) -> Transitions:
    """``num`` one-step Pendulum-v1 transitions from states uniform over the phase space.

    ``theta`` uniform in ``[-pi, pi]``, ``theta_dot`` in ``[-max_speed, max_speed]``, torques
    uniform in ``[-max_torque, max_torque]``; gymnax's ``step_env`` gives the next
    observation and the reward.

    Returns:
      :class:`~jaxmbrl.envs.data.Transitions` with leading ``[L]`` (``L = num``):
      ``obs [L, 3]``, ``action [L, 1]``, ``next_obs [L, 3]``, ``reward [L]`` float32,
      ``terminated [L]`` bool (all False: Pendulum only ends by its time limit).
    """
    env = Pendulum()
    k_theta, k_speed, k_action, k_step = jax.random.split(key, 4)
    theta = jax.random.uniform(k_theta, (num,), jnp.float32, -jnp.pi, jnp.pi)
    speed = jax.random.uniform(k_speed, (num,), jnp.float32, -1.0, 1.0) * env_params.max_speed
    torque = env_params.max_torque
    action = jax.random.uniform(k_action, (num, 1), jnp.float32, -torque, torque)
    zeros = jnp.zeros((num,), jnp.float32)
    states = EnvState(theta=theta, theta_dot=speed, last_u=zeros, time=zeros.astype(jnp.int32))
    obs = jax.vmap(env.get_obs)(states)
    step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
    next_obs, _, reward, done, _ = step(jax.random.split(k_step, num), states, action, env_params)
    return Transitions(obs, action, next_obs, reward.astype(jnp.float32), done.astype(bool))


__all__ = ["HangingPendulum", "uniform_transitions"]
