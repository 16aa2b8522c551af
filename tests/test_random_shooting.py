"""Random shooting: the planner contract, invariants and configuration errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmbrl
from jaxmbrl.envs import make, true_dynamics
from jaxmbrl.planners import RandomShootingConfig, random_shooting


def _config(**kw):
    base = dict(horizon=4, action_low=(-1.0, 0.0), action_high=(1.0, 2.0), num_samples=64)
    base.update(kw)
    return RandomShootingConfig(**base)


def _quadratic(target):
    def objective(key, actions):
        del key
        return -jnp.sum((actions - jnp.asarray(target)[None, None]) ** 2, axis=(1, 2))

    return objective


@pytest.mark.parametrize("use_jit", [False, True])
def test_plan_shapes_bounds_and_best_candidate(use_jit):
    planner = random_shooting(_config())
    target = jnp.array([0.3, 1.5])

    def plan(state, key):
        return planner.plan(state, key, _quadratic(target))

    plan = jax.jit(plan) if use_jit else plan
    action, state, info = plan(planner.init(), jax.random.key(0))
    assert action.shape == (2,) and action.dtype == jnp.float32
    assert state.solution.shape == (4, 2) and info.solution.shape == (4, 2)
    assert info.expected_return.shape == ()
    np.testing.assert_array_equal(action, info.solution[0])
    assert np.all(action >= np.array([-1.0, 0.0])) and np.all(action <= np.array([1.0, 2.0]))
    # The chosen sequence is the best of the candidates it scored.
    np.testing.assert_allclose(
        info.expected_return, _quadratic(target)(None, info.solution[None])[0], rtol=1e-6
    )


def test_more_samples_get_closer_to_optimum():
    target = jnp.array([0.3, 1.5])
    errors = []
    for n in (8, 4096):
        planner = random_shooting(_config(horizon=1, num_samples=n, warm_start=False))
        _, _, info = planner.plan(planner.init(), jax.random.key(1), _quadratic(target))
        errors.append(-float(info.expected_return))
    assert errors[1] < errors[0] / 10


def test_warm_start_keeps_previous_solution_when_it_is_best():
    planner = random_shooting(_config(horizon=3))
    target = jnp.array([0.25, 0.75])
    perfect = jnp.broadcast_to(target, (3, 2))
    state = jaxmbrl.planners.RandomShootingState(solution=perfect)
    _action, new_state, info = planner.plan(state, jax.random.key(2), _quadratic(target))
    np.testing.assert_allclose(new_state.solution, perfect)
    assert float(info.expected_return) == 0.0
    shifted = planner.shift(new_state).solution
    np.testing.assert_allclose(shifted[:2], perfect[1:])
    np.testing.assert_allclose(shifted[2], [0.0, 1.0])  # the bounds' midpoint


def test_fixed_key_gives_identical_actions():
    planner = random_shooting(_config())
    f = jax.jit(lambda k: planner.plan(planner.init(), k, _quadratic(jnp.zeros(2)))[0])
    np.testing.assert_array_equal(f(jax.random.key(3)), f(jax.random.key(3)))
    assert not np.array_equal(f(jax.random.key(3)), f(jax.random.key(4)))


@pytest.mark.parametrize("nan_fraction", [0.5, 1.0])
def test_non_finite_returns_never_win_and_action_stays_finite(nan_fraction):
    planner = random_shooting(_config(num_samples=64, warm_start=False))
    n_bad = int(64 * nan_fraction)

    def objective(key, actions):
        scores = _quadratic(jnp.zeros(2))(key, actions)
        bad = jnp.arange(actions.shape[0]) < n_bad
        return jnp.where(bad, jnp.where(jnp.arange(64) % 2 == 0, jnp.nan, jnp.inf), scores)

    action, _, info = jax.jit(lambda k: planner.plan(planner.init(), k, objective))(
        jax.random.key(5)
    )
    assert np.all(np.isfinite(action))
    assert np.all(action >= np.array([-1.0, 0.0])) and np.all(action <= np.array([1.0, 2.0]))
    if nan_fraction < 1.0:
        assert np.isfinite(info.expected_return)
    else:
        assert info.expected_return == -np.inf


def test_jit_vmap_over_start_states_equals_python_loop():
    env, params = make("PointMass-v0")
    planner = random_shooting(
        RandomShootingConfig(horizon=3, action_low=(-1.0,), action_high=(1.0,), num_samples=128)
    )
    dynamics = true_dynamics(env)

    def plan_one(x, key):
        state = jaxmbrl.envs.point_mass.EnvState(x=x, time=0)
        objective = jaxmbrl.make_objective(dynamics, params, state, gamma=0.9)
        action, _, info = planner.plan(planner.init(), key, objective)
        return action, info.expected_return

    xs = jnp.linspace(-1.0, 1.0, 16)
    keys = jax.random.split(jax.random.key(6), 16)
    batched_actions, batched_returns = jax.jit(jax.vmap(plan_one))(xs, keys)
    for i in range(16):
        action, ret = plan_one(xs[i], keys[i])
        np.testing.assert_allclose(batched_actions[i], action, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batched_returns[i], ret, rtol=1e-5, atol=1e-6)


def test_repeated_jitted_planning_compiles_once():
    env, params = make("PointMass-v0")
    planner = random_shooting(
        RandomShootingConfig(horizon=3, action_low=(-1.0,), action_high=(1.0,), num_samples=32)
    )
    traces = []

    @jax.jit
    def step(plan_state, key, obs):
        traces.append(1)  # runs only while tracing
        objective = jaxmbrl.make_objective(true_dynamics(env), params, obs)
        action, plan_state, _ = planner.plan(plan_state, key, objective)
        return action, planner.shift(plan_state)

    plan_state = planner.init()
    obs = jaxmbrl.envs.point_mass.EnvState(x=jnp.float32(0.0), time=jnp.int32(0))
    for i in range(20):
        _, plan_state = step(plan_state, jax.random.key(i), obs)
    assert len(traces) == 1


def test_plan_works_inside_scan():
    planner = random_shooting(_config(num_samples=16))

    def body(state, key):
        action, state, _ = planner.plan(state, key, _quadratic(jnp.array([0.1, 0.2])))
        return planner.shift(state), action

    _, actions = jax.jit(lambda k: jax.lax.scan(body, planner.init(), jax.random.split(k, 5)))(
        jax.random.key(7)
    )
    assert actions.shape == (5, 2) and np.all(np.isfinite(actions))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(horizon=0), "horizon"),
        (dict(horizon=2.5), "horizon"),
        (dict(action_low=(1.0, 0.0), action_high=(0.0, 2.0)), "action_low"),
        (dict(action_low=(-1.0,)), "action_low and action_high"),
        (dict(action_high=(1.0, float("nan"))), "action_high"),
        (dict(action_low=()), "action_low"),
        (dict(num_samples=0), "num_samples"),
        (dict(num_samples=1), "num_samples"),
    ],
)
def test_invalid_configuration_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _config(**kwargs)


def test_objective_with_wrong_output_shape_is_rejected():
    planner = random_shooting(_config())
    with pytest.raises(ValueError, match="one score per sequence"):
        planner.plan(planner.init(), jax.random.key(0), lambda k, a: jnp.sum(a))


def test_config_is_hashable_and_static():
    assert hash(_config()) == hash(_config())
    assert _config().action_low == (-1.0, 0.0)
