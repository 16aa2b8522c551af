"""Known reward/termination functions equal gymnax's own on random transitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.envs import make
from jaxmbrl.envs.reward_fns import known_functions, known_names


def _random_transitions(name, num=512, steps=300):
    """Transitions from random-action rollouts (auto-reset), so terminal states occur."""
    env, params = make(name)
    space = env.action_space(params)

    def rollout(key):
        k_reset, k_steps = jax.random.split(key)
        obs, state = env.reset(k_reset, params)

        def step(carry, key):
            obs, state = carry
            k_act, k_step = jax.random.split(key)
            action = space.sample(k_act)
            _, next_state_raw, reward, _, _ = env.step_env(k_step, state, action, params)
            next_obs_raw = env.get_obs(next_state_raw)
            terminated = env.is_terminated(next_state_raw, params)
            new_obs, new_state, *_ = env.step(k_step, state, action, params)
            return (new_obs, new_state), (obs, action, next_obs_raw, reward, terminated)

        _, out = jax.lax.scan(step, (obs, state), jax.random.split(k_steps, steps))
        return out

    keys = jax.random.split(jax.random.key(0), num // 16)
    out = jax.jit(jax.vmap(rollout))(keys)
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), out), params


@pytest.mark.parametrize("name", [n for n in known_names() if n != "PointMass-v0"])
def test_known_functions_match_gymnax(name):
    (obs, action, next_obs, reward, terminated), params = _random_transitions(name)
    reward_fn, termination_fn = known_functions(name, params)
    r = jax.vmap(reward_fn)(obs, action, next_obs)
    np.testing.assert_allclose(r, reward, rtol=1e-5, atol=1e-5)
    if termination_fn is None:
        assert not np.any(terminated)
    else:
        t = jax.vmap(termination_fn)(obs, action, next_obs)
        np.testing.assert_array_equal(t, terminated)
    assert r.dtype == jnp.float32


def test_unknown_environment_has_no_known_reward():
    assert known_functions("Breakout-MinAtar", None) == (None, None)


# States sampled across the terminal boundary (random rollouts rarely reach the goals).
_WIDE_STATES = {
    "CartPole-v1": dict(x=(-3.0, 3.0), x_dot=(-1.0, 1.0), theta=(-0.4, 0.4), theta_dot=(-1, 1)),
    "Acrobot-v1": dict(
        joint_angle1=(-np.pi, np.pi),
        joint_angle2=(-np.pi, np.pi),
        velocity_1=(-2.0, 2.0),
        velocity_2=(-2.0, 2.0),
    ),
    "MountainCar-v0": dict(position=(0.3, 0.6), velocity=(-0.07, 0.07)),
    "MountainCarContinuous-v0": dict(position=(0.3, 0.6), velocity=(-0.07, 0.07)),
}


@pytest.mark.parametrize("name", sorted(_WIDE_STATES))
def test_known_functions_match_gymnax_across_terminal_boundary(name):
    env, params = make(name)
    space = env.action_space(params)
    _, template = env.reset(jax.random.key(0), params)
    ranges = _WIDE_STATES[name]

    def one(key):
        keys = jax.random.split(key, len(ranges) + 2)
        fields = {
            f: jax.random.uniform(k, (), jnp.float32, lo, hi)
            for k, (f, (lo, hi)) in zip(keys, ranges.items(), strict=False)
        }
        state = template.replace(**fields)
        action = space.sample(keys[-2])
        next_obs, next_state, reward, _, _ = env.step_env(keys[-1], state, action, params)
        return (
            env.get_obs(state),
            action,
            next_obs,
            reward,
            env.is_terminated(next_state, params),
        )

    obs, action, next_obs, reward, terminated = jax.vmap(one)(
        jax.random.split(jax.random.key(1), 4000)
    )
    reward_fn, termination_fn = known_functions(name, params)
    np.testing.assert_allclose(jax.vmap(reward_fn)(obs, action, next_obs), reward, atol=1e-5)
    t = jax.vmap(termination_fn)(obs, action, next_obs)
    np.testing.assert_array_equal(t, terminated)
    assert 0.02 < float(np.mean(terminated)) < 0.98  # both sides of the boundary are covered
