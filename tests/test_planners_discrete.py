"""Discrete planners: valid int32 indices, the update against NumPy, the optimum, invariants."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.planners import (
    DiscreteCEMConfig,
    DiscreteCEMState,
    DiscreteRandomShootingConfig,
    DiscreteRandomShootingState,
    discrete_cem,
    discrete_cem_update,
    discrete_random_shooting,
)

H, D = 5, 3
TARGET = np.array([0, 2, 1, 2, 0], np.int32)


def _make(name, **kw):
    if name == "rs":
        base = dict(horizon=H, num_actions=D, num_samples=64)
        base.update(kw)
        return discrete_random_shooting(DiscreteRandomShootingConfig(**base))
    if name in ("cem", "cem_best"):
        base = dict(horizon=H, num_actions=D, num_samples=40, num_elites=5, num_iterations=4)
        base.update(kw, return_mode=name == "cem")
        return discrete_cem(DiscreteCEMConfig(**base))
    raise ValueError(name)


PLANNERS = ["rs", "cem", "cem_best"]


def _matches(target):
    """Objective: how many steps of the sequence equal ``target [H]``; checks its input."""

    def objective(key, actions):
        del key
        assert actions.dtype == jnp.int32 and actions.ndim == 2 and actions.shape[1] == H
        return jnp.sum(actions == target[None], axis=1).astype(jnp.float32)

    return objective


# Modes: 0 plain, 1 NaN for every other candidate, 2 all NaN, 3 all +inf (traced argument).
PLAIN, HALF_NAN, ALL_NAN, ALL_POSINF = range(4)


@functools.cache
def _stepper(name):
    planner = _make(name)
    traces = []

    def objective(target, mode):
        def score(key, actions):
            scores = _matches(target)(key, actions)
            odd = jnp.arange(actions.shape[0]) % 2 == 1
            return jnp.select(
                [mode == HALF_NAN, mode == ALL_NAN, mode == ALL_POSINF],
                [jnp.where(odd, scores, jnp.nan), jnp.nan, jnp.inf],
                scores,
            )

        return score

    @jax.jit
    def step(plan_state, key, target, mode):
        traces.append(1)
        action, plan_state, info = planner.plan(plan_state, key, objective(target, mode))
        return action, plan_state, info, planner.shift(plan_state)

    return planner, step, traces


def _run(name, steps, mode=PLAIN, seed=0):
    planner, step, _ = _stepper(name)
    state, outputs = planner.init(), []
    for i in range(steps):
        key = jax.random.fold_in(jax.random.key(seed), i)
        action, new_state, info, state = step(state, key, jnp.asarray(TARGET), jnp.int32(mode))
        outputs.append((action, new_state, info))
    return outputs


def _valid(x):
    x = np.asarray(x)
    return x.dtype == np.int32 and bool(np.all((x >= 0) & (x < D)))


@pytest.mark.parametrize("mode", [PLAIN, HALF_NAN, ALL_NAN, ALL_POSINF])
@pytest.mark.parametrize("name", PLANNERS)
def test_actions_are_valid_int32_indices(name, mode):
    for action, _, info in _run(name, 3, mode=mode):
        assert action.shape == () and _valid(action)
        assert info.solution.shape == (H,) and _valid(info.solution)
        if mode in (PLAIN, HALF_NAN):
            assert np.isfinite(info.expected_return)
        else:
            assert info.expected_return == -np.inf


@pytest.mark.parametrize("name", PLANNERS)
def test_fixed_key_is_deterministic_and_100_calls_compile_once(name):
    first, again = _run(name, 2, seed=1), _run(name, 2, seed=1)
    for (a1, s1, _), (a2, s2, _) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a1, a2)
        for x, y in zip(jax.tree.leaves(s1), jax.tree.leaves(s2), strict=True):
            np.testing.assert_array_equal(x, y)
    planner, step, traces = _stepper(name)
    state = planner.init()
    for i in range(100):
        _, _, _, state = step(state, jax.random.key(i), jnp.asarray(TARGET), jnp.int32(i % 4))
    assert len(traces) == 1 and step._cache_size() == 1


@pytest.mark.parametrize("name", PLANNERS)
def test_without_jit_matches_jit(name):
    planner, step, _ = _stepper(name)
    key, target = jax.random.key(7), jnp.asarray(TARGET)
    action, state, info = planner.plan(planner.init(), key, _matches(target))
    assert action.shape == () and _valid(action) and _valid(info.solution)
    jitted = step(planner.init(), key, target, jnp.int32(PLAIN))
    for x, y in zip(
        jax.tree.leaves((action, state, info)), jax.tree.leaves(jitted[:3]), strict=True
    ):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", PLANNERS)
def test_jit_vmap_over_16_objectives_equals_python_loop(name):
    planner, step, _ = _stepper(name)
    rng = np.random.default_rng(0)
    targets = jnp.asarray(rng.integers(0, D, size=(16, H)), jnp.int32)
    keys = jax.random.split(jax.random.key(2), 16)

    def plan_one(target, key):
        action, state, info = planner.plan(planner.init(), key, _matches(target))
        return action, state, info.expected_return

    batched = jax.jit(jax.vmap(plan_one))(targets, keys)
    for i in range(16):
        action, state, info, _ = step(planner.init(), keys[i], targets[i], jnp.int32(PLAIN))
        got = jax.tree.map(lambda x, i=i: x[i], batched)
        expected = (action, state, info.expected_return)
        for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["cem", "cem_best"])
def test_cem_finds_the_optimal_sequence(name):
    planner = _make(name, num_samples=60, num_elites=6, num_iterations=6)
    plan = jax.jit(lambda s, k: planner.plan(s, k, _matches(jnp.asarray(TARGET))))
    action, state, info = plan(planner.init(), jax.random.key(3))
    np.testing.assert_array_equal(info.solution, TARGET)
    assert int(action) == TARGET[0] and float(info.expected_return) == H
    np.testing.assert_array_equal(state.solution, TARGET)
    np.testing.assert_array_equal(np.argmax(state.probs, axis=1), TARGET)


def test_random_shooting_finds_the_optimum_with_enough_samples():
    planner = _make("rs", num_samples=2000)  # 3**5 = 243 sequences in all
    _, _, info = planner.plan(planner.init(), jax.random.key(4), _matches(jnp.asarray(TARGET)))
    np.testing.assert_array_equal(info.solution, TARGET)


def test_elite_frequency_update_equals_numpy():
    rng = np.random.default_rng(5)
    n, k, alpha = 30, 6, 0.25
    probs = rng.dirichlet(np.ones(D), size=H).astype(np.float32)
    samples = rng.integers(0, D, size=(n, H)).astype(np.int32)
    returns = rng.normal(size=n).astype(np.float32)
    new_probs, elite_idx, _ = jax.jit(discrete_cem_update, static_argnums=(3, 4))(
        probs, samples, returns, k, alpha
    )
    order = np.argsort(-returns, kind="stable")[:k]
    freq = np.stack([(samples[order] == d).mean(axis=0) for d in range(D)], axis=1)  # [H, D]
    np.testing.assert_array_equal(elite_idx, order)
    np.testing.assert_allclose(new_probs, alpha * probs + (1 - alpha) * freq, rtol=1e-6)
    np.testing.assert_allclose(np.sum(new_probs, axis=1), 1.0, rtol=1e-6)


def test_warm_start_and_shift():
    # Random shooting keeps a perfect previous solution.
    planner = _make("rs")
    state = DiscreteRandomShootingState(solution=jnp.asarray(TARGET))
    _, new_state, _ = planner.plan(state, jax.random.key(6), _matches(jnp.asarray(TARGET)))
    np.testing.assert_array_equal(new_state.solution, TARGET)
    shifted = planner.shift(new_state).solution
    np.testing.assert_array_equal(shifted, [*TARGET[1:], TARGET[-1]])  # repeats the last action
    # CEM: the shifted distribution gets a uniform last step; the solution repeats its last.
    planner = _make("cem")
    probs = jnp.asarray(np.eye(D, dtype=np.float32)[TARGET])
    shifted = planner.shift(DiscreteCEMState(probs=probs, solution=jnp.asarray(TARGET)))
    np.testing.assert_allclose(shifted.probs[:-1], probs[1:])
    np.testing.assert_allclose(shifted.probs[-1], np.full(D, 1 / D))
    np.testing.assert_array_equal(shifted.solution, [*TARGET[1:], TARGET[-1]])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(horizon=0), "horizon"),
        (dict(num_actions=0), "num_actions"),
        (dict(num_samples=0), "num_samples"),
        (dict(num_samples=10, num_elites=11), "num_elites"),
        (dict(num_iterations=0), "num_iterations"),
        (dict(alpha=1.0), "alpha"),
        (dict(warm_start_weight=1.5), "warm_start_weight"),
    ],
)
def test_invalid_cem_configuration_names_the_field(kwargs, field):
    base = dict(horizon=H, num_actions=D)
    base.update(kwargs)
    with pytest.raises(ValueError, match=field):
        DiscreteCEMConfig(**base)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(horizon=0), "horizon"),
        (dict(num_actions=0), "num_actions"),
        (dict(num_samples=1), "num_samples"),
    ],
)
def test_invalid_random_shooting_configuration_names_the_field(kwargs, field):
    base = dict(horizon=H, num_actions=D)
    base.update(kwargs)
    with pytest.raises(ValueError, match=field):
        DiscreteRandomShootingConfig(**base)
