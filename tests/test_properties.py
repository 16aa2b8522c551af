"""Property-based tests (hypothesis) of the public boundaries: every case either works or
raises the documented error from a check at the boundary -- never a NaN action, never a
traceback from deep inside JAX.

JAX compiles once per new shape (and per new static config under ``jit``), so hypothesis
draws *values* while the shapes stay fixed per test (or come from a tiny set):

* planner configs (a) are planned with ``jax.disable_jit()``: op-by-op execution caches the
  compiled ops by shape, so a new temperature or bound costs no compilation;
* objectives (b) read their scores from a traced ``values`` argument of one jitted step;
* the buffer (c) is jitted once per capacity;
* shape and dtype checks (d) run under ``jax.eval_shape`` (trace only, nothing compiled).

Every test is derandomized and uses no example database, so CI runs the same cases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import pathlib
import traceback

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import jaxmbrl
from jaxmbrl import buffer as rb
from jaxmbrl import mpc, rollouts
from jaxmbrl.envs.spec import Environment
from jaxmbrl.models import ensemble as ens
from jaxmbrl.models import training
from jaxmbrl.planners import registry
from jaxmbrl.types import ActionSpace

NAN, INF = math.nan, math.inf
INT32_MAX = 2**31 - 1


def profile(max_examples: int):
    """Deterministic hypothesis settings: no database, no deadline (compiles are slow)."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --------------------------------------------------------------------------------------
# Boundary errors: the raising frame must be ours (or chex's), not JAX's
# --------------------------------------------------------------------------------------

_OURS = (pathlib.Path(jaxmbrl.__file__).parent, pathlib.Path(chex.__file__).parent)


@contextlib.contextmanager
def unfiltered_tracebacks():
    """JAX hides its own frames from tracebacks; show them so the raising frame is real."""
    old = jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")
    try:
        yield
    finally:
        jax.config.update("jax_traceback_filtering", old)


def raised_at_boundary(error: BaseException) -> bool:
    """The innermost frame of ``error`` is in jaxmbrl or in a chex assertion."""
    frame = pathlib.Path(traceback.extract_tb(error.__traceback__)[-1].filename)
    return any(frame.is_relative_to(root) for root in _OURS)


def check_boundary_error(error: BaseException, words: tuple[str, ...]) -> None:
    """``error`` is a ValueError/TypeError (or a chex assertion) raised by a boundary check
    whose message mentions one of ``words``."""
    chex_assertion = isinstance(error, AssertionError) and str(error).startswith("[Chex]")
    assert isinstance(error, (ValueError, TypeError)) or chex_assertion, repr(error)
    assert raised_at_boundary(error), "".join(traceback.format_exception(error))
    assert any(w in str(error) for w in words), (words, str(error))


def finite_tree(tree) -> bool:
    """Every float leaf of ``tree`` is finite."""
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    return all(np.all(np.isfinite(x)) for x in leaves if np.issubdtype(x.dtype, np.floating))


# --------------------------------------------------------------------------------------
# (a) Planner configs: build or ValueError naming the option; a built planner plans finitely
# --------------------------------------------------------------------------------------

WILD = [
    *(0, -1, 1, 2, -0.5, 0.5, 1.0, 3.0, 1e-300, 1e-40, 1e38, 3e38, 1e300),
    *(10**30, 2**31, 2**63, NAN, INF, -INF, True, False, "1", "false", None),
]
WILD_BOUNDS = [-2.0, -1.0, 0.0, 0.5, 2.0, 1e-300, 1e15, 1e20, 3e38, 1e300, NAN, INF, -INF, "x"]
BOX = ([-2.0, -1.0], [2.0, 0.5])
# Small shapes as the baseline, so planning stays cheap; every other option keeps its default.
SMALL = {"num_samples": 16, "num_elites": 4, "num_iterations": 2}
PLANNERS = [(d, n) for d in (False, True) for n in registry.planner_names(d)]
REJECTED, PLANNED = "rejected", "planned"


def wild_values():
    """Anything: the special values, any float, and valid-looking fractions and scales."""
    return st.one_of(
        st.sampled_from(WILD),
        st.floats(),
        st.floats(0.0, 1.0),
        st.floats(min_value=0.0, exclude_min=True, allow_infinity=False),
    )


def draw_spec_inputs(draw, discrete: bool, name: str):
    """A planner's options, horizon and action space: baseline values except for up to two
    wild fields, and the names of those (the only names a ValueError may blame)."""
    options = {k: SMALL.get(k, d) for k, d in registry.options_of(name, discrete).items()}
    fields = [*options, "horizon", "num_actions" if discrete else "bounds"]
    wild = draw(st.sets(st.sampled_from(fields), max_size=2))
    for opt in wild & options.keys():
        options[opt] = draw(wild_values())
    horizon = draw(st.sampled_from(WILD)) if "horizon" in wild else 3
    if discrete:
        num_actions = draw(st.sampled_from(WILD)) if "num_actions" in wild else 3
        return options, horizon, ("discrete", num_actions), wild
    low, high = list(BOX[0]), list(BOX[1])
    if "bounds" in wild:
        wild = (wild - {"bounds"}) | {"action_low", "action_high"}
        sizes = draw(st.sampled_from([(2, 2), (2, 2), (2, 2), (1, 2), (0, 0)]))
        bound = st.one_of(st.sampled_from(WILD_BOUNDS), st.floats())
        low = [draw(bound) if draw(st.booleans()) else b for b in low][: sizes[0]]
        high = [draw(bound) if draw(st.booleans()) else b for b in high][: sizes[1]]
    return options, horizon, ("box", low, high), wild


def quadratic_objective(key, actions):
    """``-sum((a - 0.3)**2)`` per sequence (discrete: the distance from action 1)."""
    del key
    a = actions.astype(jnp.float32).reshape(actions.shape[0], -1)
    discrete = jnp.issubdtype(actions.dtype, jnp.integer)
    return -jnp.sum(jnp.square(a - (1.0 if discrete else 0.3)), axis=1)


def diverging_objective(key, actions):
    """:func:`quadratic_objective`, but NaN (a diverging rollout) where the first action
    exceeds 1 (discrete: where it is 2)."""
    first = actions.reshape(actions.shape[0], -1)[:, 0].astype(jnp.float32)
    return jnp.where(first > 1.0, jnp.nan, quadratic_objective(key, actions))


def check_action(action, config, discrete: bool) -> None:
    action = np.asarray(action)
    if discrete:
        assert action.shape == () and action.dtype == np.int32
        assert 0 <= int(action) < config.num_actions
        return
    low, high = (np.asarray(b) for b in config.bounds())
    assert action.shape == low.shape and action.dtype == np.float32
    assert np.all(np.isfinite(action)), action
    assert np.all((low <= action) & (action <= high)), (action, low, high)


def check_builds_or_names_the_option(discrete, name, options, horizon, space, wild) -> str:
    """Build, or a ValueError from our checks naming a ``wild`` field; once built, the
    config holds bools and int32 sizes, and two plan calls (not jitted; the second a warm
    start on an objective with NaN scores) act finitely."""
    try:
        with unfiltered_tracebacks():
            if space[0] == "discrete":
                action_space = ActionSpace.discrete(space[1])
            else:
                action_space = ActionSpace.box(space[1], space[2])
            planner, config = registry.build(
                registry.PlannerSpec(name, horizon=horizon, options=options), action_space
            )
    except ValueError as e:
        check_boundary_error(e, tuple(wild) or ("<no option was wild>",))
        return REJECTED
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(field.default, bool):
            assert isinstance(value, bool), (field.name, value)
        elif field.name in ("horizon", "num_actions") or type(field.default) is int:
            assert type(value) is int and 1 <= value <= INT32_MAX, (field.name, value)
    with jax.disable_jit():
        state = planner.init()
        for step, objective in enumerate([quadratic_objective, diverging_objective]):
            action, state, info = planner.plan(state, jax.random.key(step), objective)
            check_action(action, config, discrete)
            assert finite_tree(state), state
            assert not np.isnan(np.asarray(info.expected_return))
            state = planner.shift(state)
            assert finite_tree(state), state
    return PLANNED


@pytest.mark.parametrize(("discrete", "name"), PLANNERS)
@profile(max_examples=30)
@given(data=st.data())
def test_planner_config_builds_or_names_the_bad_option(discrete, name, data):
    options, horizon, space, wild = draw_spec_inputs(data.draw, discrete, name)
    note(f"options={options!r} horizon={horizon!r} space={space!r} wild={sorted(wild)}")
    event(check_builds_or_names_the_option(discrete, name, options, horizon, space, wild))


# Cases the property found, pinned with the outcome they have now; each failed before (the
# comment says how).
PINNED = [
    ("mppi", {"temperature": 1e-40}, None, REJECTED),  # 0 in float32: NaN weights
    ("mppi", {"temperature": 1e300}, None, REJECTED),  # inf: -inf / inf = NaN weights
    ("mppi", {"noise_sigma": 1e300}, None, REJECTED),  # inf noise: inf - inf = NaN (filter)
    ("mppi", {"noise_sigma": 3e38}, None, PLANNED),  # finite, but sigma * noise overflowed
    ("icem", {"colored_noise_exponent": 300.0}, None, PLANNED),  # spectrum overflowed: NaN
    ("icem", {"colored_noise_exponent": 1e300}, None, PLANNED),
    ("cem", {}, ([-1e20, -1.0], [1e20, 0.5]), REJECTED),  # (high - low)**2 overflowed: inf
    ("icem", {}, ([-3e38, -1.0], [3e38, 0.5]), REJECTED),  # an infinite range: inf std
    ("cem", {}, ([-1e300, -1.0], [2.0, 0.5]), REJECTED),  # inf in float32
    ("random", {}, (["x", -1.0], [2.0, 0.5]), REJECTED),  # float("x"), message without name
    ("cem", {"num_iterations": 10**30}, None, REJECTED),  # a TypeError deep inside JAX
    ("random", {"warm_start": "no"}, None, REJECTED),  # a string that counted as True
]


@pytest.mark.parametrize(("name", "options", "bounds", "outcome"), PINNED)
def test_pinned_planner_configs(name, options, bounds, outcome):
    wild = set(options) | ({"action_low", "action_high"} if bounds else set())
    options = {k: v for k, v in SMALL.items() if k in registry.options_of(name, False)} | options
    space = ("box", *(bounds or BOX))
    assert check_builds_or_names_the_option(False, name, options, 3, space, wild) == outcome


# --------------------------------------------------------------------------------------
# (b) Objectives returning any mix of finite, NaN and infinite scores
# --------------------------------------------------------------------------------------

B_HORIZON = 4
B_OPTIONS = {"num_samples": 24, "num_elites": 4, "num_iterations": 3}
B_PLANNERS = {
    "random": (False, "random", {}),
    "cem": (False, "cem", {}),
    "icem": (False, "icem", {}),
    "icem_fixed_shapes": (False, "icem", {"fixed_shapes": True}),
    "mppi": (False, "mppi", {}),
    "discrete_random": (True, "random", {}),
    "discrete_cem": (True, "cem", {}),
}
NUM_VALUES = 32  # >= the largest batch any of these planners scores (iCEM: 27)
NUM_CALLS = 3


@functools.cache
def jitted_planner(key: str):
    """``(planner, config, plan_step, shift)`` for ``B_PLANNERS[key]``, built and jitted once;
    ``plan_step(state, key, values [NUM_VALUES])`` scores candidate ``n`` as ``values[n]``
    (plus a small action term, so finite scores still tell candidates apart)."""
    discrete, name, extra = B_PLANNERS[key]
    taken = registry.options_of(name, discrete)
    options = {k: v for k, v in B_OPTIONS.items() if k in taken} | extra
    action = ActionSpace.discrete(3) if discrete else ActionSpace.box(*BOX)
    planner, config = registry.build(registry.PlannerSpec(name, B_HORIZON, options), action)

    def plan_step(state, key, values):
        def objective(key, actions):
            del key
            n = actions.shape[0]
            a = actions.astype(jnp.float32).reshape(n, -1)
            return values[:n] - 1e-3 * jnp.sum(jnp.square(a - 0.3), axis=1)

        return planner.plan(state, key, objective)

    return planner, config, jax.jit(plan_step), jax.jit(planner.shift)


def score_values():
    """``[NUM_CALLS, NUM_VALUES]`` scores: a mix, or all NaN / +inf / -inf, or one finite."""
    special = st.sampled_from([NAN, INF, -INF])
    element = st.one_of(st.floats(-1e6, 1e6), special)
    mixed = st.lists(element, min_size=NUM_VALUES, max_size=NUM_VALUES)
    uniform = special.map(lambda v: [v] * NUM_VALUES)
    one_finite = st.tuples(st.integers(0, NUM_VALUES - 1), special, st.floats(-1e6, 1e6)).map(
        lambda t: [t[2] if i == t[0] else t[1] for i in range(NUM_VALUES)]
    )
    row = st.one_of(mixed, uniform, one_finite)
    return st.lists(row, min_size=NUM_CALLS, max_size=NUM_CALLS)


@pytest.mark.parametrize("key", list(B_PLANNERS))
@profile(max_examples=30)
@given(values=score_values(), seed=st.integers(0, 2**16))
def test_non_finite_scores_never_reach_the_action_or_the_plan_state(key, values, seed):
    discrete = B_PLANNERS[key][0]
    planner, config, plan_step, shift = jitted_planner(key)
    state = planner.init()
    keys = jax.random.split(jax.random.key(seed), NUM_CALLS)
    for call in range(NUM_CALLS):  # warm starts: plan, shift, plan again
        row = jnp.asarray(values[call], jnp.float32)
        action, state, info = plan_step(state, keys[call], row)
        check_action(action, config, discrete)
        assert finite_tree(state), (call, state)
        assert finite_tree(info.solution)
        if discrete:
            assert np.all((0 <= np.asarray(info.solution)) & (np.asarray(info.solution) < 3))
        assert not np.isnan(np.asarray(info.expected_return))
        state = shift(state)
        assert finite_tree(state), (call, state)


# --------------------------------------------------------------------------------------
# (c) The replay buffer against a pure-Python FIFO, with non-finite rows kept out
# --------------------------------------------------------------------------------------

T = 7  # rows per add_batch call (fixed: one compilation per capacity)
ROW_KINDS = ["ok"] * 6 + ["obs_nan", "obs_inf", "obs_-inf", "reward_nan", "reward_inf"]


def _row(row_id: int, kind: str) -> tuple[list[float], float]:
    """Row ``row_id``'s ``(obs [2], reward)``: unique finite values unless ``kind`` spoils one."""
    obs, reward = [float(row_id), -float(row_id) - 0.5], 0.25 * row_id
    bad = {"nan": NAN, "inf": INF, "-inf": -INF}
    if kind.startswith("obs_"):
        obs[row_id % 2] = bad[kind[4:]]
    elif kind.startswith("reward_"):
        reward = bad[kind[7:]]
    return obs, reward


@functools.cache
def buffer_ops(capacity: int):
    """Jitted ``(add_filtered, add_one, sample)`` for one capacity; the adds also return
    what the checks read: ``(buffer, finite_rows, ordered(buffer), valid_mask(buffer))``."""

    def add_filtered(buffer, items, mask):
        finite = rb.finite_rows(items)
        buffer = rb.add_batch(buffer, items, mask & finite)
        return buffer, finite, rb.ordered(buffer), rb.valid_mask(buffer)

    def add_one(buffer, item):
        buffer = rb.add(buffer, item)
        return buffer, None, rb.ordered(buffer), rb.valid_mask(buffer)

    sample = jax.jit(functools.partial(rb.sample, batch_size=8))
    return jax.jit(add_filtered), jax.jit(add_one), sample


def check_buffer(outputs, reference: list[tuple[int, list[float], float]], total: int):
    """The buffer holds ``reference`` oldest first, and only finite values in valid rows."""
    buffer, _, (data, mask), valid = jax.device_get(outputs)
    capacity, size = len(valid), len(reference)
    assert int(buffer.size) == size == min(total, capacity)
    assert int(buffer.total_added) == total
    assert int(buffer.position) == total % capacity
    np.testing.assert_array_equal(mask, np.arange(capacity) < size)
    np.testing.assert_array_equal(valid, np.arange(capacity) < size)
    np.testing.assert_array_equal(data["id"][:size], [r[0] for r in reference])
    np.testing.assert_array_equal(
        data["obs"][:size], np.reshape([r[1] for r in reference], (-1, 2))
    )
    np.testing.assert_array_equal(data["reward"][:size], [r[2] for r in reference])
    assert np.all(np.isfinite(buffer.data["obs"][valid]))
    assert np.all(np.isfinite(buffer.data["reward"][valid]))


@profile(max_examples=40)
@given(
    capacity=st.sampled_from([1, 3, 5]),
    ops=st.lists(
        st.one_of(
            st.tuples(
                st.just("batch"),
                st.lists(st.booleans(), min_size=T, max_size=T),
                st.lists(st.sampled_from(ROW_KINDS), min_size=T, max_size=T),
            ),
            st.tuples(st.just("single"), st.just(None), st.just(None)),
        ),
        min_size=1,
        max_size=5,
    ),
    seed=st.integers(0, 2**16),
)
def test_buffer_is_a_fifo_of_the_finite_kept_rows(capacity, ops, seed):
    add_filtered, add_one, sample = buffer_ops(capacity)
    example = {"id": np.int32(0), "obs": np.zeros(2, np.float32), "reward": np.float32(0.0)}
    buffer = rb.init(capacity, example)
    fifo, total, next_id = [], 0, 1
    for op, mask, kinds in ops:
        if op == "single":  # one finite item through `add`
            obs, reward = _row(next_id, "ok")
            item = {
                "id": np.int32(next_id),
                "obs": np.asarray(obs, np.float32),
                "reward": np.float32(reward),
            }
            outputs = add_one(buffer, item)
            rows = [(next_id, obs, reward)]
            next_id += 1
        else:
            ids = list(range(next_id, next_id + T))
            next_id += T
            made = [_row(i, k) for i, k in zip(ids, kinds, strict=True)]
            items = {
                "id": np.asarray(ids, np.int32),
                "obs": np.asarray([m[0] for m in made], np.float32),
                "reward": np.asarray([m[1] for m in made], np.float32),
            }
            outputs = add_filtered(buffer, items, np.asarray(mask))
            np.testing.assert_array_equal(outputs[1], [k == "ok" for k in kinds])
            rows = [
                (i, *m)
                for i, m, keep, k in zip(ids, made, mask, kinds, strict=True)
                if keep and k == "ok"
            ]
        buffer = outputs[0]
        for row in rows:  # the reference: append, drop the oldest beyond capacity
            fifo.append(row)
            total += 1
            if len(fifo) > capacity:
                fifo.pop(0)
        check_buffer(outputs, fifo, total)
    if fifo:
        drawn = sample(buffer, jax.random.key(seed))
        assert set(np.asarray(drawn["id"]).tolist()) <= {r[0] for r in fifo}
        assert finite_tree(drawn)


# --------------------------------------------------------------------------------------
# (d) Shapes and dtypes at the model, rollout and MPC boundaries
# --------------------------------------------------------------------------------------

OBS_DIM, ACT_DIM, MEMBERS, ELITES = 3, 2, 3, 2
MODEL = ens.EnsembleConfig(
    obs_dim=OBS_DIM, action_dim=ACT_DIM, num_members=MEMBERS, num_elites=ELITES, hidden_sizes=(8,)
)
MODEL_STATE = jax.eval_shape(functools.partial(ens.init, MODEL), jax.random.key(0))
FLOATS = [jnp.float32, jnp.float16, jnp.bfloat16]
DTYPES = [*FLOATS, jnp.int32, jnp.bool_]
SHAPE_WORDS = ("shape", "rank", "type", "obs", "action", "elites", "dtype")


def array_spec(lead: tuple[int, ...], last: int | None, dtype) -> jax.ShapeDtypeStruct:
    shape = lead if last is None else (*lead, last)
    return jax.ShapeDtypeStruct(shape, dtype)


@st.composite
def obs_action_specs(draw, leads):
    """``(obs, action, valid)``: abstract arrays, right or wrong in one way or several."""
    obs_lead, act_lead = draw(st.sampled_from(leads)), draw(st.sampled_from(leads))
    obs_last = draw(st.sampled_from([OBS_DIM, OBS_DIM, OBS_DIM + 1, OBS_DIM - 1, None]))
    act_last = draw(st.sampled_from([ACT_DIM, ACT_DIM, ACT_DIM + 1, None]))
    obs_dtype, act_dtype = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(DTYPES))
    valid = (
        obs_last == OBS_DIM
        and act_last == ACT_DIM
        and obs_lead == act_lead
        and obs_dtype in FLOATS
        and act_dtype in FLOATS
    )
    return (
        array_spec(obs_lead, obs_last, obs_dtype),
        array_spec(act_lead, act_last, act_dtype),
        valid,
    )


def expect(valid: bool, run, check_output, words=SHAPE_WORDS) -> None:
    """``run()`` works (and ``check_output`` holds) when ``valid``; else a boundary error."""
    with unfiltered_tracebacks():
        try:
            out = run()
        except Exception as e:
            assert not valid, "".join(traceback.format_exception(e))
            check_boundary_error(e, words)
            event(f"rejected: {type(e).__name__}")
            return
    assert valid, f"accepted invalid input, returned {out}"
    check_output(out)
    event("valid")


@profile(max_examples=40)
@given(specs=obs_action_specs([(), (4,), (1,), (2, 4)]))
def test_ensemble_predict_checks_shapes_and_dtypes(specs):
    obs, action, valid = specs

    def run():
        return jax.eval_shape(functools.partial(ens.predict, MODEL), MODEL_STATE, obs, action)

    def check(out):
        mean, var = out
        assert mean.shape == var.shape == (MEMBERS, *obs.shape[:-1], OBS_DIM)
        assert mean.dtype == var.dtype == jnp.float32

    expect(valid, run, check)


@profile(max_examples=30)
@given(specs=obs_action_specs([(ELITES, 4), (ELITES + 1, 4), (4,), (1, ELITES, 4)]))
def test_ensemble_predict_grouped_checks_shapes_and_dtypes(specs):
    obs, action, valid = specs
    valid = valid and len(obs.shape) == 3 and obs.shape[0] <= ELITES

    def run():
        sample = functools.partial(ens.sample_grouped, MODEL)
        return jax.eval_shape(sample, MODEL_STATE, jax.random.key(0), obs, action)

    def check(out):
        next_obs, reward = out
        assert next_obs.shape == obs.shape and reward is None

    expect(valid, run, check)


@profile(max_examples=25)
@given(
    specs=obs_action_specs([(16,), (15,), (16, 1)]),
    next_last=st.sampled_from([OBS_DIM, OBS_DIM, OBS_DIM + 1]),
    next_dtype=st.sampled_from([jnp.float32, jnp.int32]),
    reward=st.sampled_from([(16,), (16,), (16, 1), (15,), None]),
    mask=st.sampled_from([None, (16, jnp.bool_), (16, jnp.int32), (15, jnp.bool_)]),
)
def test_training_checks_shapes_and_dtypes(specs, next_last, next_dtype, reward, mask):
    obs, action, valid = specs
    model = dataclasses.replace(MODEL, learn_reward=True)
    train_config = training.TrainConfig(batch_size=4, max_epochs=1)
    rows = obs.shape[0] if obs.shape else 0
    next_obs = array_spec(obs.shape[:1], next_last, next_dtype)
    reward_spec = None if reward is None else jax.ShapeDtypeStruct(reward, jnp.float32)
    mask_spec = None if mask is None else jax.ShapeDtypeStruct(mask[:1], mask[1])
    valid = (
        valid
        and len(obs.shape) == 2
        and next_last == OBS_DIM
        and next_dtype == jnp.float32
        and reward == (rows,)
        and (mask is None or mask == (rows, jnp.bool_))
    )

    def run():
        fn = functools.partial(training.train, model, train_config)
        key = jax.random.key(0)
        return jax.eval_shape(fn, key, None, obs, action, next_obs, reward_spec, mask_spec)

    def check(out):
        state, log = out
        assert log.train_loss.shape == (1,)
        assert state.elite_idx.shape == (ELITES,)

    expect(valid, run, check)


@profile(max_examples=30)
@given(
    obs_shape=st.sampled_from(
        [(OBS_DIM,), (OBS_DIM,), (OBS_DIM + 1,), (OBS_DIM - 1,), (), (1, OBS_DIM)]
    ),
    obs_dtype=st.sampled_from([jnp.float32, jnp.int32]),
    act_last=st.sampled_from([ACT_DIM, ACT_DIM, ACT_DIM + 1]),
    num_members=st.sampled_from([ELITES, ELITES, ELITES + 1]),
    reward_known=st.booleans(),
)
def test_particle_objective_checks_the_observation_shape(
    obs_shape, obs_dtype, act_last, num_members, reward_known
):
    rollout = rollouts.RolloutConfig(num_particles=4, propagation="tsinf")
    reward_fn = (lambda o, a, n: -jnp.sum(jnp.square(n))) if reward_known else None
    obs = jax.ShapeDtypeStruct(obs_shape, obs_dtype)
    actions = jax.ShapeDtypeStruct((5, 3, act_last), jnp.float32)
    # The model has no reward output, so an unknown reward is an error (output size Y).
    valid = (
        obs_shape == (OBS_DIM,) and act_last == ACT_DIM and num_members <= ELITES and reward_known
    )

    def run():
        def score(state, obs, actions):
            model = functools.partial(ens.predict_grouped, MODEL, state)
            objective = rollouts.make_particle_objective(
                rollout, model, obs, num_members=num_members, reward_fn=reward_fn
            )
            return objective(jax.random.key(0), actions)

        return jax.eval_shape(score, MODEL_STATE, obs, actions)

    def check(out):
        assert out.shape == (5,) and out.dtype == jnp.float32

    expect(valid, run, check, (*SHAPE_WORDS, "output size"))


MPC_STEPS = 8


def toy_env(bad: jax.Array) -> Environment:
    """A point mass ``pos' = pos + 0.5 * action`` (``O = A = 2``) whose *observation* after
    step ``t`` is ``pos + bad[t]`` (``bad`` is 0, NaN or +-inf); the state stays finite."""

    def reset(key):
        del key
        pos = jnp.array([1.0, -0.5])
        return pos, (pos, jnp.int32(0))

    def step(key, state, action):
        del key
        pos, t = state
        pos = pos + 0.5 * action
        obs = pos + bad[t]
        return obs, (pos, t + 1), -jnp.sum(jnp.square(pos)), jnp.array(False)

    def oracle_objective(env_state, gamma, chunk_size):
        raise NotImplementedError

    return Environment(reset, step, lambda key: jnp.zeros(2), oracle_objective)


def toy_objective(env_state, obs):
    """Scores sequences from the *observation* (as a learned model would): NaN in, NaN out."""

    def objective(key, actions):
        del key
        pos = obs[None, None] + 0.5 * jnp.cumsum(actions, axis=1)
        return -jnp.sum(jnp.square(pos), axis=(1, 2))

    return objective


@functools.cache
def mpc_episode():
    planner, _ = registry.build(
        registry.PlannerSpec("auto", 3, {"num_samples": 16, "num_iterations": 2}),
        ActionSpace.box(*BOX),
    )

    def run(bad, key):
        keys = jax.random.split(key, MPC_STEPS)
        return mpc.episode(toy_env(bad), planner, toy_objective, key, keys)

    return jax.jit(run)


@profile(max_examples=25)
@given(
    bad=st.lists(
        st.sampled_from([0.0, 0.0, 0.0, NAN, INF, -INF]), min_size=MPC_STEPS, max_size=MPC_STEPS
    ),
    seed=st.integers(0, 2**16),
)
def test_mpc_acts_finitely_from_a_non_finite_observation(bad, seed):
    record = mpc_episode()(jnp.asarray(bad, jnp.float32), jax.random.key(seed))
    actions = np.asarray(record.actions)
    assert np.all(np.isfinite(actions)), actions
    assert np.all((np.asarray(BOX[0]) <= actions) & (actions <= np.asarray(BOX[1])))
    assert finite_tree(record.solutions)
    obs_ok = np.all(np.isfinite(np.asarray(record.observations)), axis=1)
    np.testing.assert_array_equal(obs_ok[1:], np.isfinite(bad[:-1]))  # the observation seen
    # The imagined return is NaN exactly where the observation was not finite.
    np.testing.assert_array_equal(np.isnan(np.asarray(record.expected_returns)), ~obs_ok)
