"""Tests of jaxmbrl.mpc: the one MPC step and its episode against a Python loop, seeds as vmap."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import envs, mpc
from jaxmbrl.envs import gymnax_adapter, make
from jaxmbrl.envs.gymnax_adapter import functions, oracle_objective
from jaxmbrl.mpc import random_planner, run_episode, run_seeds
from jaxmbrl.planners import PlanInfo, Planner, RandomShootingConfig, random_shooting
from jaxmbrl.planners.discrete import DiscreteRandomShootingConfig, discrete_random_shooting
from jaxmbrl.planners.registry import PlannerSpec, build
from jaxmbrl.types import ActionSpace


def small_planner():
    return random_shooting(
        RandomShootingConfig(horizon=4, action_low=[-2.0], action_high=[2.0], num_samples=32)
    )


def python_reference(env, params, planner, key, num_steps):
    """The episode written as a plain Python loop over real steps (one jitted plan per step)."""

    @jax.jit
    def plan(plan_state, plan_key, env_state):
        return planner.plan(plan_state, plan_key, oracle_objective(env, params, env_state))

    reset_key, loop_key = jax.random.split(key)
    obs, state = env.reset_env(reset_key, params)
    plan_state, alive, rewards, actions = planner.init(), True, [], []
    observations, solutions = [], []
    for step_key in jax.random.split(loop_key, num_steps):
        plan_key, env_key = jax.random.split(step_key)
        action, plan_state, info = plan(plan_state, plan_key, state)
        observations.append(np.asarray(obs))
        solutions.append(np.asarray(info.solution))
        obs, state, reward, done, _ = env.step_env(env_key, state, action, params)
        rewards.append(float(reward) if alive else 0.0)
        actions.append(np.asarray(action))
        alive = alive and not bool(done)
        plan_state = planner.shift(plan_state)
    return np.asarray(rewards), np.asarray(actions), np.asarray(observations), np.stack(solutions)


def test_compiled_episode_equals_python_reference():
    env, params = envs.make("Pendulum-v1")
    planner = small_planner()
    key = jax.random.key(7)
    want_rewards, want_actions, want_obs, want_solutions = python_reference(
        env, params, planner, key, num_steps=4
    )
    run = jax.jit(functools.partial(run_episode, functions(env, params), planner, num_steps=4))
    got = run(key)
    np.testing.assert_allclose(got.actions, want_actions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.observations, want_obs, rtol=1e-5, atol=1e-6)
    assert got.solutions.shape == (4, 4, 1)  # [T, H, A]
    np.testing.assert_allclose(got.solutions, want_solutions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.solutions[:, 0], got.actions, rtol=1e-6)
    np.testing.assert_allclose(got.rewards, want_rewards, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.episode_return, want_rewards.sum(), rtol=1e-5)
    assert got.alive.all() and got.expected_returns.shape == (4,)


def test_vmapped_seeds_equal_single_seed_runs():
    env, params = envs.make("Pendulum-v1")
    planner = small_planner()
    keys = jax.random.split(jax.random.key(0), 3)
    fns = functions(env, params)
    batched = jax.jit(functools.partial(run_seeds, fns, planner, num_steps=5))(keys)
    single = jax.jit(functools.partial(run_episode, fns, planner, num_steps=5))
    assert batched.rewards.shape == (3, 5) and batched.actions.shape == (3, 5, 1)
    for i in range(3):
        one = single(keys[i])
        np.testing.assert_allclose(batched.rewards[i], one.rewards, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batched.actions[i], one.actions, rtol=1e-5, atol=1e-6)
    # different seeds start from different states
    assert not np.allclose(batched.rewards[0], batched.rewards[1])


def constant_planner(action):
    """A stub planner that always returns ``action`` (to test the episode loop itself)."""
    action = jnp.asarray(action)

    def plan(state, key, objective):
        del key, objective
        info = PlanInfo(solution=action[None], expected_return=jnp.float32(0))
        return action, state, info

    return Planner(init=lambda: jnp.zeros(()), plan=plan, shift=lambda s: s)


def test_reward_masked_after_real_termination():
    env, params = envs.make("CartPole-v1")
    key = jax.random.key(3)
    planner = constant_planner(jnp.int32(0))
    episode = functools.partial(run_episode, functions(env, params), planner, num_steps=60)
    result = jax.jit(episode)(key)
    # reference: always push left until the pole falls
    reset_key, loop_key = jax.random.split(key)
    _, state = env.reset_env(reset_key, params)
    length = 0
    for step_key in jax.random.split(loop_key, 60):
        _, env_key = jax.random.split(step_key)
        _, state, _, done, _ = env.step_env(env_key, state, jnp.int32(0), params)
        length += 1
        if bool(done):
            break
    assert length < 60
    np.testing.assert_array_equal(result.alive, np.arange(60) < length)
    np.testing.assert_array_equal(result.rewards, (np.arange(60) < length).astype(np.float32))
    assert float(result.episode_return) == length


def test_discrete_oracle_mpc_balances_cartpole():
    _, env = envs.load("CartPole-v1")
    planner = discrete_random_shooting(
        DiscreteRandomShootingConfig(horizon=8, num_actions=2, num_samples=32)
    )
    keys = jax.random.split(jax.random.key(0), 2)
    result = jax.jit(functools.partial(run_seeds, env, planner, num_steps=50))(keys)
    np.testing.assert_array_equal(result.episode_return, [50.0, 50.0])
    assert result.actions.dtype == jnp.int32


def test_num_steps_validation():
    _, env = envs.load("Pendulum-v1")
    with pytest.raises(ValueError, match="num_steps"):
        run_episode(env, small_planner(), jax.random.key(0), num_steps=0)


def test_random_planner_samples_the_action_space_and_ignores_the_objective():
    spec, env = envs.load("Pendulum-v1")
    planner = random_planner(env.sample_action)
    record = jax.jit(
        lambda k: run_episode(env, planner, k, num_steps=20, make_objective=lambda s, o: None)
    )(jax.random.key(1))
    actions = np.asarray(record.actions)
    assert actions.shape == (20, 1) and np.all(np.abs(actions) <= spec.action.high[0])
    assert np.unique(actions).size == 20  # a fresh sample every step
    assert np.all(np.isnan(record.expected_returns))
    np.testing.assert_array_equal(record.solutions[:, 0], record.actions)


def test_traced_env_params_vmap_as_domain_randomisation():
    """The Environment record may close over traced parameters: one program, many pendulums."""
    env, params = envs.make("Pendulum-v1")
    planner = small_planner()

    def episode(max_speed, key):
        fns = functions(env, params.replace(max_speed=max_speed))
        return run_episode(fns, planner, key, num_steps=5).observations

    speeds = jnp.asarray([0.5, 8.0])
    obs = jax.jit(jax.vmap(episode, in_axes=(0, None)))(speeds, jax.random.key(2))
    assert np.all(np.abs(obs[0, :, 2]) <= 0.5 + 1e-6)  # the slow pendulum is clipped
    assert not np.allclose(obs[0], obs[1])


def test_recorded_states_are_the_states_the_episode_planned_from():
    gym_env, params = make("PointMass-v0")
    env = gymnax_adapter.functions(gym_env, params.replace(goal=0.3))
    options = {"num_samples": 16, "num_elites": 4, "return_mean_elites": False}
    spec = PlannerSpec("cem", horizon=4, options=options)
    planner, _ = build(spec, ActionSpace.box((-1.0,), (1.0,)))
    reset_key, loop_key = jax.random.split(jax.random.key(5))
    step_keys = jax.random.split(loop_key, 8)
    oracle = mpc.oracle(env)
    record = mpc.episode(env, planner, oracle, reset_key, step_keys, record_env_states=True)
    states = record.env_states
    np.testing.assert_array_equal(states.x, record.observations[:, 0])
    assert np.ptp(np.asarray(states.x)) > 0.1  # the point mass moved
    # Re-scoring the chosen plans with the objective they were planned with gives back the
    # planner's own estimates (the oracle is deterministic).
    keys = jax.random.split(jax.random.key(0), 8)
    np.testing.assert_allclose(
        mpc.rescore(oracle, record, keys), record.expected_returns, rtol=1e-5, atol=1e-5
    )
    without_states = mpc.episode(env, planner, oracle, reset_key, step_keys)
    assert without_states.env_states is None
    np.testing.assert_array_equal(without_states.actions, record.actions)
