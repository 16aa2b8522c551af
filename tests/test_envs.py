"""Environments: the point mass, names, and true dynamics as a model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmbrl
from jaxmbrl.envs import make, point_mass, true_dynamics


def test_point_mass_dynamics_and_reward():
    env, params = make("PointMass-v0")
    obs, state = env.reset(jax.random.key(0), params)
    np.testing.assert_allclose(obs, [0.0])
    out = env.step(jax.random.key(1), state, jnp.array([1.0]), params)
    assert len(out) == 6  # gymnax 1.x: obs, state, reward, terminated, truncated, info
    obs, state, reward, terminated, truncated, _ = out
    np.testing.assert_allclose(obs, [0.1], rtol=1e-6)
    np.testing.assert_allclose(reward, -0.4, rtol=1e-6)
    assert not terminated and not truncated
    # actions are clipped to [-1, 1]
    obs, *_ = env.step_env(jax.random.key(2), state, jnp.array([5.0]), params)
    np.testing.assert_allclose(obs, [0.2], rtol=1e-6)


def test_biased_gain_is_a_parameter():
    env, params = make("PointMass-v0")
    state = point_mass.EnvState(x=jnp.float32(0.0), time=0)
    obs, *_ = env.step_env(jax.random.key(0), state, jnp.array([1.0]), params.replace(gain=0.05))
    np.testing.assert_allclose(obs, [0.05], rtol=1e-6)


def test_point_mass_known_reward_matches_env():
    env, params = make("PointMass-v0")
    state = point_mass.EnvState(x=jnp.float32(0.3), time=0)
    obs = env.get_obs(state)
    next_obs, _, reward, _, _ = env.step_env(jax.random.key(0), state, jnp.array([-0.5]), params)
    r = point_mass.reward_fn(params.goal)(obs, jnp.array([-0.5]), next_obs)
    np.testing.assert_allclose(r, reward, rtol=1e-6)


def test_truncation_after_max_steps():
    env, params = make("PointMass-v0")
    params = params.replace(max_steps_in_episode=3)
    _, state = env.reset(jax.random.key(0), params)
    for i in range(3):
        *_, truncated, _ = env.step(jax.random.key(i), state, jnp.array([0.0]), params)
        _, state, *_ = env.step_env(jax.random.key(i), state, jnp.array([0.0]), params)
    assert bool(truncated)


def test_true_dynamics_rollout_return_on_gymnax_pendulum():
    env, params = make("Pendulum-v1")
    _, state = env.reset(jax.random.key(0), params)
    actions = jnp.zeros((5, 1))
    ret = jaxmbrl.rollout_return(true_dynamics(env), params, jax.random.key(1), state, actions)
    total, s = 0.0, state
    for t in range(5):
        _, s, r, _, _ = env.step_env(jax.random.key(9), s, actions[t], params)
        total += float(r)
    np.testing.assert_allclose(ret, total, rtol=1e-5)


def test_rollout_return_discount_and_termination():
    def dyn(params, key, s, a):
        return s + 1.0, jnp.float32(1.0)

    actions = jnp.zeros((4, 1))
    ret = jaxmbrl.rollout_return(dyn, None, jax.random.key(0), jnp.float32(0.0), actions, gamma=0.5)
    np.testing.assert_allclose(ret, 1 + 0.5 + 0.25 + 0.125)
    term = lambda s, a, s2: s2 >= 2.0  # terminates on the second step
    ret = jaxmbrl.rollout_return(
        dyn, None, jax.random.key(0), jnp.float32(0.0), actions, termination_fn=term
    )
    np.testing.assert_allclose(ret, 2.0)


def test_unknown_environment_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown environment 'Nope-v0'"):
        make("Nope-v0")


def make_point_mass_far_goal():
    """A user environment factory for the ``module:function`` form."""
    env, params = make("PointMass-v0")
    return env, params.replace(goal=2.0)


def not_an_env():
    return 42


def test_module_function_environments():
    env, params = make("test_envs:make_point_mass_far_goal")
    assert env.name == "PointMass-v0" and params.goal == 2.0
    with pytest.raises(ValueError, match="cannot import module"):
        make("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="has no function"):
        make("test_envs:missing")
    with pytest.raises(ValueError, match="must return a gymnax"):
        make("test_envs:not_an_env")
    with pytest.raises(ValueError, match="must look like"):
        make("test_envs:")


@pytest.mark.parametrize("name", ["Pendulum-v1", "CartPole-v1", "PointMass-v0"])
def test_random_episodes_are_consecutive_true_transitions(name):
    env, params = make(name)
    data = jaxmbrl.envs.random_episodes(env, params, jax.random.key(0), 3, 7)
    assert data.obs.shape[:2] == (3, 7) and data.reward.shape == (3, 7)
    np.testing.assert_array_equal(data.obs[:, 1:], data.next_obs[:, :-1])  # no resets
    space = env.action_space(params)
    if name == "CartPole-v1":
        assert data.action.dtype == jnp.int32
        assert np.all((data.action >= 0) & (data.action < space.n))
    else:
        assert np.all(data.action >= space.low) and np.all(data.action <= space.high)
    flat = jaxmbrl.envs.flatten(data)
    assert flat.obs.shape == (21, data.obs.shape[-1]) and flat.terminated.shape == (21,)


def test_hanging_pendulum_starts_near_hanging_down_and_steps_as_gymnax():
    from jaxmbrl.envs.pendulum import HangingPendulum

    env, base = HangingPendulum(0.3), make("Pendulum-v1")[0]
    params = env.default_params
    keys = jax.random.split(jax.random.key(0), 64)
    _, states = jax.vmap(lambda k: env.reset_env(k, params))(keys)
    assert np.all(np.abs(np.asarray(states.theta) - np.pi) <= 0.3)
    assert np.all(np.abs(np.asarray(states.theta_dot)) <= 0.3)
    state = jax.tree.map(lambda x: x[0], states)
    action = jnp.array([1.5])
    mine = env.step_env(keys[1], state, action, params)
    theirs = base.step_env(keys[1], state, action, params)
    for x, y in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_array_equal(x, y)


def test_uniform_pendulum_transitions_cover_the_phase_space_and_follow_gymnax():
    from jaxmbrl.envs.pendulum import uniform_transitions
    from jaxmbrl.envs.reward_fns import known_functions

    _, params = make("Pendulum-v1")
    data = uniform_transitions(params, jax.random.key(0), 2000)
    assert data.obs.shape == (2000, 3) and data.action.shape == (2000, 1)
    theta = np.arctan2(np.asarray(data.obs[:, 1]), np.asarray(data.obs[:, 0]))
    assert np.histogram(theta, bins=4, range=(-np.pi, np.pi))[0].min() > 400  # the whole circle
    assert np.abs(np.asarray(data.obs[:, 2])).max() > 0.9 * params.max_speed
    assert not np.asarray(data.terminated).any()
    # The reward is gymnax's reward of the step (a known function of obs and action).
    reward_fn, _ = known_functions("Pendulum-v1", params)
    want = jax.vmap(reward_fn)(data.obs, data.action, data.next_obs)
    np.testing.assert_allclose(data.reward, want, rtol=1e-5, atol=1e-5)


def test_specs_reject_bad_input_with_one_clear_message():
    from jaxmbrl.envs import EnvSpec, load
    from jaxmbrl.types import ActionSpace

    with pytest.raises(ValueError, match="low and high"):
        ActionSpace(low=(-1.0,))
    with pytest.raises(ValueError, match="not both"):
        ActionSpace(low=(-1.0,), high=(1.0,), num_actions=2)
    with pytest.raises(ValueError, match="same length"):
        ActionSpace.box((-1.0, -1.0), (1.0,))
    with pytest.raises(ValueError, match="num_actions"):
        ActionSpace.discrete(0)
    with pytest.raises(ValueError, match="obs_dim"):
        EnvSpec("x", 0, ActionSpace.discrete(2), 10)
    with pytest.raises(ValueError, match="must be an ActionSpace"):
        EnvSpec("x", 3, (2,), 10)
    with pytest.raises(ValueError, match="unknown environment"):
        load("Nope-v0")
    spec, _ = load("Pendulum-v1", episode_length=7)
    assert (spec.obs_dim, spec.action.low, spec.episode_length) == (3, (-2.0,), 7)
    assert load("CartPole-v1")[0].action.model_dim == 2
