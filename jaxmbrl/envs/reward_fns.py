"""Known reward and termination functions of gymnax environments, on observations.

Planning with a learned model needs the reward of an imagined transition. For these
environments the reward is a known function of ``(obs, action, next_obs)``, so only the
dynamics have to be learned (as PETS does); any other environment falls back to a learned
reward (the model's reward head) and no termination.

Each function handles one item: ``obs [O]``, ``action [A] float32`` (continuous) or
``[] int32`` (discrete), ``next_obs [O]``; rewards are ``[] float32``, terminations
``[] bool``. They reproduce gymnax 1.0.1's ``step_env`` exactly (tests check it on random
transitions).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxmbrl.types import Array, RewardFn, TerminationFn


def _pendulum(params):
    def reward(obs: Array, action: Array, next_obs: Array) -> Array:
        del next_obs
        theta = jnp.arctan2(obs[1], obs[0])  # already in [-pi, pi]
        u = jnp.clip(jnp.reshape(action, ()), -params.max_torque, params.max_torque)
        return -(theta**2 + 0.1 * obs[2] ** 2 + 0.001 * u**2).astype(jnp.float32)

    return reward, None


def _mountain_car_continuous(params):
    def goal(next_obs: Array) -> Array:
        return (next_obs[0] >= params.goal_position) & (next_obs[1] >= params.goal_velocity)

    def reward(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs
        a = jnp.reshape(action, ()).astype(jnp.float32)
        return -0.1 * a**2 + 100.0 * goal(next_obs).astype(jnp.float32)

    def termination(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs, action
        return goal(next_obs)

    return reward, termination


def _cartpole(params):
    def fallen(o: Array) -> Array:
        out_x = (o[0] < -params.x_threshold) | (o[0] > params.x_threshold)
        out_theta = (o[2] < -params.theta_threshold_radians) | (
            o[2] > params.theta_threshold_radians
        )
        return out_x | out_theta

    def reward(obs: Array, action: Array, next_obs: Array) -> Array:
        del action, next_obs
        return 1.0 - fallen(obs).astype(jnp.float32)  # gymnax: reward from the *previous* state

    def termination(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs, action
        return fallen(next_obs)

    return reward, termination


def _acrobot(params):
    del params

    def up(o: Array) -> Array:
        cos1, sin1, cos2, sin2 = o[0], o[1], o[2], o[3]
        cos12 = cos1 * cos2 - sin1 * sin2  # cos(theta1 + theta2)
        return -cos1 - cos12 > 1.0

    def reward(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs, action
        return -1.0 + up(next_obs).astype(jnp.float32)

    def termination(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs, action
        return up(next_obs)

    return reward, termination


def _mountain_car(params):
    def reward(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs, action, next_obs
        return jnp.float32(-1.0)

    def termination(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs, action
        return (next_obs[0] >= params.goal_position) & (next_obs[1] >= params.goal_velocity)

    return reward, termination


def _point_mass(params):
    def reward(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs, action
        return -jnp.abs(next_obs[0] - params.goal)

    return reward, None


_KNOWN = {
    "Pendulum-v1": _pendulum,
    "MountainCarContinuous-v0": _mountain_car_continuous,
    "CartPole-v1": _cartpole,
    "Acrobot-v1": _acrobot,
    "MountainCar-v0": _mountain_car,
    "PointMass-v0": _point_mass,
}


def known_names() -> tuple[str, ...]:
    """Environments with a known reward function."""
    return tuple(sorted(_KNOWN))


def known_functions(name: str, env_params) -> tuple[RewardFn | None, TerminationFn | None]:
    """``(reward_fn, termination_fn)`` for environment ``name`` with ``env_params``.

    Returns ``(None, None)`` for an environment without a known reward function (use a
    learned reward). ``termination_fn`` is ``None`` for environments that never terminate.
    """
    if name not in _KNOWN:
        return None, None
    return _KNOWN[name](env_params)
