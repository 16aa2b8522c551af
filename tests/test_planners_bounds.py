"""Optima on the action bounds: every continuous planner's default reaches them exactly.

The objective is ``-sum((actions - target)**2)`` over ``[N, H, A]`` in the non-symmetric box
``low = (-2, -1, -3)``, ``high = (2, 0.5, 1)``, with the target on a bound in every entry, in
some action dimensions only, or at some time steps only (the other entries inside). Each of
``K`` keys makes ``C`` planning calls from ``init()``, each warm-started from the previous
call's state without ``shift`` (the same decision planned again). Errors are taken over keys
(median, and the largest for a looser bound) so a single unlucky key does not fail a test.

Measured when written (the largest error over the on-bound entries, median / largest over
8 keys): after the fourth call CEM 0.000 / 0.000 (0.000 / 0.024 from the second call on),
iCEM 0.000 / 0.086, MPPI 0.000 to 0.035 / 0.082 (its mean averages noise of ``sigma = 1``:
its median error on the entries inside the bounds is 0.12 to 0.17); mbrl-lib's CEM
(``sampling="truncated"``) 0.16 to 0.26 / at least 0.137 after the second call and 0.03 to
0.06 after the fourth, never exactly on the bound.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.planners import (
    MBRL_LIB_OPTIONS,
    MBRL_LIB_STEP,
    CEMConfig,
    ICEMConfig,
    MPPIConfig,
    cem,
    icem,
    mppi,
)

H, A, K, C = 4, 3, 8, 4
LOW = np.array([-2.0, -1.0, -3.0], np.float32)
HIGH = np.array([2.0, 0.5, 1.0], np.float32)
BOUNDS = dict(horizon=H, action_low=tuple(LOW.tolist()), action_high=tuple(HIGH.tolist()))
# Inside entries: the midpoint plus a fixed fraction (|u| <= 0.4) of the half range.
_U = np.array([[0.3, -0.4, 0.2], [-0.2, 0.1, 0.4], [0.4, 0.3, -0.3], [-0.1, -0.2, 0.1]])
INSIDE = ((LOW + HIGH) / 2 + _U * (HIGH - LOW) / 2).astype(np.float32)
EDGE = np.where(np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]], bool), HIGH, LOW)
# Which target entries lie on a bound, [H, A] each.
ON_BOUND = {
    "all": np.ones((H, A), bool),
    "some_dims": np.broadcast_to(np.array([True, False, True]), (H, A)),
    "some_steps": np.broadcast_to(np.array([True, False, True, False])[:, None], (H, A)),
}
KINDS = list(ON_BOUND)
TARGETS = np.stack([np.where(ON_BOUND[k], EDGE, INSIDE) for k in KINDS]).astype(np.float32)

PLANNERS = {
    "cem": lambda: cem(CEMConfig(**BOUNDS)),
    "icem": lambda: icem(ICEMConfig(**BOUNDS)),
    "mppi": lambda: mppi(MPPIConfig(**BOUNDS)),
    "cem_truncated": lambda: cem(CEMConfig(**BOUNDS, **MBRL_LIB_OPTIONS)),
}
# Largest on-bound error after the last call: (median over keys, largest over keys).
TOLERANCE = {"cem": (0.02, 0.05), "icem": (0.05, 0.2), "mppi": (0.08, 0.2)}


@functools.cache
def run(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(actions [T, K, C, A], solutions [T, K, C, H, A], means [T, K, C, H, A])`` of planner
    ``name`` over the targets ``T`` and keys ``K``, ``C`` calls each."""
    planner = PLANNERS[name]()

    def one(target, key):
        def objective(key, actions):
            del key
            return -jnp.sum((actions - jnp.broadcast_to(target, actions.shape)) ** 2, axis=(1, 2))

        def call(state, call_key):
            action, state, info = planner.plan(state, call_key, objective)
            return state, (action, info.solution, state.mean)

        _, out = jax.lax.scan(call, planner.init(), jax.random.split(key, C))
        return out

    keys = jax.random.split(jax.random.key(0), K)
    per_key = jax.vmap(one, in_axes=(None, 0))
    out = jax.jit(jax.vmap(per_key, in_axes=(0, None)))(jnp.asarray(TARGETS), keys)
    return tuple(np.asarray(x) for x in out)


def on_bound_errors(name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(first [K, C], plan [K, C])``: the largest error over the on-bound entries of the
    first action and of the plan."""
    t = KINDS.index(kind)
    actions, solutions, _ = run(name)
    mask, target = ON_BOUND[kind], TARGETS[t]
    first = np.where(mask[0], np.abs(actions[t] - target[0]), 0.0).max(axis=-1)
    plan = np.where(mask, np.abs(solutions[t] - target), 0.0).max(axis=(-2, -1))
    return first, plan


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_default_planner_reaches_optimum_on_the_bounds(name, kind):
    median_tol, max_tol = TOLERANCE[name]
    first, plan = on_bound_errors(name, kind)
    for errors in (first[:, -1], plan[:, -1]):
        assert np.median(errors) < median_tol, errors
        assert errors.max() < max_tol, errors
    # The plan state keeps the clipped solution: warm starts begin inside the bounds.
    actions, solutions, means = run(name)
    np.testing.assert_array_equal(means, solutions)
    assert np.all((LOW <= solutions) & (solutions <= HIGH))
    assert np.all((LOW <= actions) & (actions <= HIGH))


@pytest.mark.parametrize("kind", KINDS)
def test_mbrl_lib_cem_stops_short_of_the_bounds(kind):
    # mbrl-lib's truncated normal caps the variance near a bound, so the mean approaches it
    # only geometrically; the default ("clipped") CEM is on it after the same two calls.
    first, plan = on_bound_errors("cem_truncated", kind)
    assert first[:, 1].min() > 0.1 and plan[:, 1].min() > 0.1, (first[:, 1], plan[:, 1])
    assert np.all(plan > 0)  # never exactly on the bound, not even after the last call
    default_first, default_plan = on_bound_errors("cem", kind)
    assert np.median(default_first[:, 1]) < 0.02 and np.median(default_plan[:, 1]) < 0.02


def test_bad_sampling_choice_names_the_field():
    with pytest.raises(ValueError, match="sampling"):
        CEMConfig(**BOUNDS, sampling="nope")
    assert CEMConfig(**BOUNDS).sampling == "clipped"


# ----------------------------------------------------------------------------- first call
# One planning call from init(), the first action's largest error (max over A), median over
# keys. An optimum on the bounds is farther from the start (the bounds' midpoint) than one
# inside: the EDGE targets lie a half range away, the INSIDE ones at most 0.4 of it.
# Measured when written (inside / on the bounds): CEM 0.072 / 0.000, MPPI 0.118 / 0.086;
# iCEM 0.148 / 1.106, so iCEM is not held to this (its first call is as far off for the same
# targets inside a box twice as wide, 0.94: distance, not the bounds; it reaches the bounds
# over calls, test_default_planner_reaches_optimum_on_the_bounds).
@functools.cache
def first_call_errors(name: str) -> dict[str, float]:
    """Median over 8 keys of the first action's largest error after one call from init(),
    for the ``"inside"`` and ``"edge"`` targets."""
    planner = PLANNERS[name]()

    def one(target, key):
        def objective(key, actions):
            del key
            return -jnp.sum((actions - jnp.broadcast_to(target, actions.shape)) ** 2, axis=(1, 2))

        action, _, _ = planner.plan(planner.init(), key, objective)
        return jnp.max(jnp.abs(action - target[0]))

    keys = jax.random.split(jax.random.key(1), K)
    targets = jnp.asarray(np.stack([INSIDE, EDGE]).astype(np.float32))
    errors = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))(targets, keys)
    inside, edge = np.median(np.asarray(errors), axis=1)
    return {"inside": float(inside), "edge": float(edge)}


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_first_call_reaches_the_bounds_as_closely_as_inside(name):
    errors = first_call_errors(name)
    assert errors["edge"] <= errors["inside"] + 0.05, errors


def test_mbrl_lib_spread_falls_short_of_the_bounds_in_one_call():
    # mbrl-lib's initial spread and step (1/4 of the range, alpha 0.1): the first call stops
    # well short of an optimum on the bounds; the defaults above do not.
    planner = cem(CEMConfig(**BOUNDS, **MBRL_LIB_STEP))

    def objective(key, actions):
        del key
        target = jnp.broadcast_to(jnp.asarray(EDGE, jnp.float32), actions.shape)
        return -jnp.sum((actions - target) ** 2, axis=(1, 2))

    keys = jax.random.split(jax.random.key(1), K)
    actions = jax.vmap(lambda k: planner.plan(planner.init(), k, objective)[0])(keys)
    error = np.median(np.abs(np.asarray(actions) - EDGE[0]).max(axis=-1))
    assert error > 2 * first_call_errors("cem")["edge"] + 0.1, error
