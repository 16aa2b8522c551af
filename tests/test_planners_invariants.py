"""Invariants every continuous planner (CEM, iCEM, MPPI) must keep.

Bounds (asymmetric, ``A = 2``), finite actions under NaN/inf returns, determinism for a fixed
key, ``jit(vmap(plan))`` equal to a Python loop, one compilation for 100 jitted calls, ``plan``
inside ``lax.scan``, and ``shift``. Run with ``jax_numpy_rank_promotion="raise"`` (set in
``conftest.py``) so no planner relies on silent broadcasting.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.planners import CEMConfig, ICEMConfig, MPPIConfig, cem, icem, mppi

LOW = np.array([-1.0, 0.5], np.float32)
HIGH = np.array([2.0, 0.75], np.float32)
H = 4


def _make(name):
    bounds = dict(horizon=H, action_low=tuple(LOW), action_high=tuple(HIGH))
    if name == "cem":
        return cem(CEMConfig(**bounds, num_samples=32, num_elites=4, num_iterations=3))
    if name == "cem_best":
        return cem(
            CEMConfig(
                **bounds, num_samples=32, num_elites=4, num_iterations=3, return_mean_elites=False
            )
        )
    if name == "icem":
        return icem(ICEMConfig(**bounds, num_samples=32, num_elites=4, num_iterations=3))
    if name == "icem_mean":
        return icem(
            ICEMConfig(
                **bounds, num_samples=32, num_elites=4, num_iterations=3, return_mean_elites=True
            )
        )
    if name == "mppi":
        return mppi(MPPIConfig(**bounds, num_samples=32, num_iterations=3, noise_sigma=0.5))
    raise ValueError(name)


PLANNERS = ["cem", "cem_best", "icem", "icem_mean", "mppi"]


def _quadratic(target):
    """Concave objective ``-sum((a - target)**2)`` over the sequence; ``target`` is ``[A]``."""

    def objective(key, actions):
        del key
        return -jnp.sum((actions - target[None, None]) ** 2, axis=(1, 2))

    return objective


def _in_bounds(x):
    x = np.asarray(x)
    return bool(np.all(x >= LOW) and np.all(x <= HIGH))


# Modes of the test objective: 0 plain, 1 NaN for every other candidate, 2 all NaN,
# 3 all +inf, 4 all -inf. A traced argument, so one compilation serves every test below.
PLAIN, HALF_NAN, ALL_NAN, ALL_POSINF, ALL_NEGINF = range(5)


@functools.cache
def _stepper(name):
    """``(planner, step, traces, violations)`` with one jitted ``step`` per planner.

    ``step(plan_state, key, target [A], mode [] int32) -> (action, plan_state, info,
    shifted_state)``; ``traces`` grows by one per trace of ``step``; ``violations`` receives
    the largest bound violation of each candidate batch the objective is given.
    """
    planner = _make(name)
    traces, violations = [], []

    def objective(target, mode):
        def score(key, actions):
            below = jnp.max(jnp.broadcast_to(LOW, actions.shape) - actions)
            above = jnp.max(actions - jnp.broadcast_to(HIGH, actions.shape))
            jax.debug.callback(lambda v: violations.append(float(v)), jnp.maximum(below, above))
            scores = _quadratic(target)(key, actions)
            n = actions.shape[0]
            odd = jnp.arange(n) % 2 == 1
            return jnp.select(
                [mode == HALF_NAN, mode == ALL_NAN, mode == ALL_POSINF, mode == ALL_NEGINF],
                [jnp.where(odd, scores, jnp.nan), jnp.nan, jnp.inf, -jnp.inf],
                scores,
            )

        return score

    @jax.jit
    def step(plan_state, key, target, mode):
        traces.append(1)  # runs only while tracing
        action, plan_state, info = planner.plan(plan_state, key, objective(target, mode))
        return action, plan_state, info, planner.shift(plan_state)

    return planner, step, traces, violations


def _run(name, steps, target=(0.5, 0.6), mode=PLAIN, seed=0):
    """``steps`` receding-horizon calls (plan, then shift); returns the per-call outputs."""
    planner, step, _, _ = _stepper(name)
    state, outputs = planner.init(), []
    for i in range(steps):
        key = jax.random.fold_in(jax.random.key(seed), i)
        action, new_state, info, state = step(
            state, key, jnp.asarray(target, jnp.float32), jnp.int32(mode)
        )
        outputs.append((action, new_state, info))
    return outputs


@pytest.mark.parametrize("name", PLANNERS)
def test_every_action_and_candidate_respects_asymmetric_bounds(name):
    *_, violations = _stepper(name)
    violations.clear()
    # The optimum lies outside the box, so the planners push against the bounds.
    outputs = _run(name, 3, target=(5.0, -3.0))
    jax.effects_barrier()
    assert violations and max(violations) <= 0.0
    for action, state, info in outputs:
        assert action.shape == (2,) and action.dtype == jnp.float32
        assert info.solution.shape == (H, 2) and info.expected_return.shape == ()
        assert _in_bounds(action) and _in_bounds(info.solution) and _in_bounds(state.mean)
        np.testing.assert_array_equal(action, info.solution[0])
    # It moved towards the corner nearest the optimum, (high[0], low[1]).
    corner, midpoint = np.array([HIGH[0], LOW[1]]), (LOW + HIGH) / 2
    assert np.linalg.norm(outputs[-1][0] - corner) < 0.9 * np.linalg.norm(midpoint - corner)


@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_without_jit_matches_jit(name):
    planner, step, _, _ = _stepper(name)
    key, target = jax.random.key(1), jnp.array([0.3, 0.7])
    action, _, info = planner.plan(planner.init(), key, _quadratic(target))
    jitted_action, _, jitted_info, _ = step(planner.init(), key, target, jnp.int32(PLAIN))
    assert _in_bounds(action) and _in_bounds(info.solution)
    np.testing.assert_allclose(action, jitted_action, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info.solution, jitted_info.solution, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", [HALF_NAN, ALL_NAN, ALL_POSINF, ALL_NEGINF])
@pytest.mark.parametrize("name", PLANNERS)
def test_non_finite_returns_give_finite_actions_within_bounds(name, mode):
    for action, state, info in _run(name, 2, mode=mode):
        assert np.all(np.isfinite(action)) and _in_bounds(action)
        assert np.all(np.isfinite(info.solution)) and _in_bounds(info.solution)
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state))
        if mode == HALF_NAN:
            assert np.isfinite(info.expected_return)
        else:
            assert info.expected_return == -np.inf


@pytest.mark.parametrize("name", PLANNERS)
def test_fixed_key_gives_identical_actions(name):
    first, again, other = _run(name, 2, seed=3), _run(name, 2, seed=3), _run(name, 2, seed=4)
    for (a1, s1, _), (a2, s2, _) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a1, a2)
        for x, y in zip(jax.tree.leaves(s1), jax.tree.leaves(s2), strict=True):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0][0], other[0][0])


@pytest.mark.parametrize("name", PLANNERS)
def test_100_jitted_planning_calls_compile_once(name):
    planner, step, traces, _ = _stepper(name)
    plan_state = planner.init()
    for i in range(100):
        target = jnp.array([0.01 * i, 0.6], jnp.float32)
        mode = jnp.int32(i % 5)
        action, _, _, plan_state = step(plan_state, jax.random.key(i), target, mode)
    action.block_until_ready()
    # Every test of this module shares `step` with the same argument types: one trace in all.
    assert len(traces) == 1
    assert step._cache_size() == 1


@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_jit_vmap_over_16_objectives_equals_python_loop(name):
    planner, step, _, _ = _stepper(name)

    def plan_one(target, key):
        action, new_state, info = planner.plan(planner.init(), key, _quadratic(target))
        return action, new_state, info.expected_return

    targets = jnp.stack(
        [jnp.linspace(-1.0, 2.0, 16), jnp.linspace(0.5, 0.75, 16)[::-1]], axis=1
    )  # [16, A], inside the bounds
    keys = jax.random.split(jax.random.key(6), 16)
    batched = jax.jit(jax.vmap(plan_one))(targets, keys)
    for i in range(16):
        # The loop reuses the jitted single-item step (one compilation for all 16 calls).
        action, new_state, info, _ = step(planner.init(), keys[i], targets[i], jnp.int32(PLAIN))
        expected = (action, new_state, info.expected_return)
        got = jax.tree.map(lambda x, i=i: x[i], batched)
        for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    # Different objectives do give different plans.
    assert len({float(a) for a in batched[0][:, 0]}) > 8


@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_plan_and_shift_inside_scan(name):
    planner = _make(name)

    def body(state, key):
        action, state, _ = planner.plan(state, key, _quadratic(jnp.array([0.4, 0.7])))
        return planner.shift(state), action

    run = jax.jit(lambda k: jax.lax.scan(body, planner.init(), jax.random.split(k, 4)))
    final_state, actions = run(jax.random.key(7))
    assert actions.shape == (4, 2) and _in_bounds(actions)
    assert jax.tree.map(jnp.shape, final_state) == jax.tree.map(jnp.shape, planner.init())


@pytest.mark.parametrize("name", PLANNERS)
def test_shift_moves_one_step_and_refills_the_midpoint(name):
    planner = _make(name)
    init = planner.init()
    rng = np.random.default_rng(0)
    state = jax.tree.map(
        lambda x: jnp.asarray(rng.uniform(0.5, 0.7, x.shape), x.dtype) if x.ndim else x, init
    )
    shifted = planner.shift(state)
    assert jax.tree.map(jnp.shape, shifted) == jax.tree.map(jnp.shape, init)
    np.testing.assert_array_equal(shifted.mean[:-1], state.mean[1:])
    np.testing.assert_allclose(shifted.mean[-1], (LOW + HIGH) / 2)
    if hasattr(state, "std"):
        np.testing.assert_array_equal(shifted.std[:-1], state.std[1:])
        np.testing.assert_allclose(shifted.std[-1], init.std[-1])  # the initial spread
    if hasattr(state, "elites"):
        np.testing.assert_array_equal(shifted.elites[:, :-1], state.elites[:, 1:])
        expected = np.broadcast_to((LOW + HIGH) / 2, shifted.elites[:, -1].shape)
        np.testing.assert_allclose(shifted.elites[:, -1], expected)


@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_objective_with_wrong_output_shape_is_rejected(name):
    planner = _make(name)
    with pytest.raises(ValueError, match="one score per sequence"):
        planner.plan(planner.init(), jax.random.key(0), lambda k, a: jnp.sum(a))
