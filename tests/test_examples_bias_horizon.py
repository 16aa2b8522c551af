"""examples/model_bias.py and examples/horizon_gap.py run, write finite results, and measure
what they claim (imagined against real return of the chosen plan)."""

import json
import math

import horizon_gap
import jax
import jax.numpy as jnp
import model_bias
import numpy as np
import pytest
from json_numbers import numbers as _numbers

from jaxmbrl import mpc
from jaxmbrl.envs import gymnax_adapter, make
from jaxmbrl.planners.registry import PlannerSpec, build
from jaxmbrl.types import ActionSpace


def _check_outputs(tmp_path, name, result, min_numbers):
    path = tmp_path / f"{name}.json"
    stored = json.loads(path.read_text())  # json.loads accepts NaN / Infinity: walk them all
    numbers = list(_numbers(stored))
    assert len(numbers) >= min_numbers
    bad = [x for x in numbers if not math.isfinite(x)]
    assert not bad, f"non-finite numbers in {name}.json: {bad[:5]}"
    assert stored["timings"]["total_s"] > 0 and stored["config"]["quick"] is True
    assert stored == json.loads(json.dumps(result))  # main() returns what it wrote
    png = tmp_path / f"{name}.png"
    assert png.exists() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_window_returns_against_a_loop():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(2, 12))
    got = model_bias.window_returns(rewards, 4)
    want = np.array([[r[t : t + 4].sum() for t in range(9)] for r in rewards])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_summarize_by_hand():
    # One episode, T = 3, H = 2: two windows (t = 0, 1).
    trace = model_bias.PlanTrace(
        reward=jnp.array([[-1.0, -2.0, -4.0]]),
        expected=jnp.array([[0.0, 0.0, 0.0]]),
        imagined=jnp.array([[-1.0, -3.0, 9.0]]),
        open_loop=jnp.array([[-2.0, -7.0, 9.0]]),
        imagined_first=None,
    )
    s = model_bias.summarize(trace, 2)
    assert s["imagined"] == -2.0 and s["open_loop"] == -4.5
    assert s["closed_loop"] == -4.5  # windows -3 and -6
    assert s["gap_open"] == 2.5 and s["gap_closed"] == 2.5 and s["gap_open_per_step"] == 1.25
    assert s["real_return"] == -7.0 and "imagined_one_step_return" not in s


@pytest.fixture(scope="module")
def bias(tmp_path_factory):
    out = tmp_path_factory.mktemp("model_bias")
    return out, model_bias.main(["--quick", "--out", str(out)])


def test_model_bias_writes_finite_json_and_png(bias):
    out, result = bias
    _check_outputs(out, "model_bias", result, min_numbers=200)


def test_point_mass_true_model_has_no_gap_and_biased_model_is_over_optimistic(bias):
    _, result = bias
    rows = {r["gain"]: r for r in result["point_mass"]["models"]}
    true, biased = rows[0.1], rows[0.05]
    # The true model scores its plan exactly as the real point mass does.
    assert abs(true["gap_open"]) < 1e-5
    assert abs(true["imagined_one_step_return"] - true["real_return"]) < 1e-4
    for goal, per_goal in biased["per_goal"].items():
        # 0.05u under-estimates each action: the plan asks for twice the force it needs and
        # overshoots, so the model promises more than its plan delivers (measured ~0.25-0.31).
        assert per_goal["gap_open"] > 0.1, goal
        # Replanning every step recovers part of it (measured ~0.3-0.5).
        assert per_goal["replanning_gain"] > 0.1, goal
    assert biased["real_return"] < true["real_return"] - 0.1


def test_pendulum_narrow_data_model_is_worse_than_adequate(bias):
    _, result = bias
    rows = {r["data"].split(" ")[0]: r for r in result["pendulum"]["models"]}
    assert set(rows) == {"little", "narrow", "adequate", "oracle"}
    assert abs(rows["oracle"]["gap_open"]) < 1e-3
    # The narrow model is accurate only where it saw data; off it, far worse than adequate.
    narrow_err = np.mean(rows["narrow"]["heldout_error_elites"])
    assert narrow_err > 10 * np.mean(rows["adequate"]["heldout_error_elites"])
    assert rows["narrow"]["real_return"] < rows["adequate"]["real_return"]
    for name in ("little", "narrow", "adequate"):
        assert abs(rows[name]["gap_open"]) > 1e-3  # a learned model never matches exactly


def test_mpc_trace_is_deterministic_and_jit_equals_eager():
    gym_env, params = make("PointMass-v0")
    env = gymnax_adapter.functions(gym_env, params)
    model = gymnax_adapter.functions(gym_env, params.replace(gain=0.05))
    spec = PlannerSpec("cem", horizon=4, options={"num_samples": 16, "num_elites": 4})
    planner, _ = build(spec, ActionSpace.box((-1.0,), (1.0,)))
    run = lambda k: model_bias.mpc_trace(env, planner, mpc.oracle(model), k, num_steps=6)
    key = jax.random.key(3)
    a, b, c = run(key), run(key), jax.jit(run)(key)
    for x, y, z in zip(a, b, c, strict=True):
        if x is None:
            assert y is None and z is None
            continue
        np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(x, z, rtol=1e-5, atol=1e-6)
    assert a.reward.shape == a.imagined.shape == a.open_loop.shape == (6,)


def test_replayed_states_are_the_states_the_episode_planned_from():
    gym_env, params = make("PointMass-v0")
    env = gymnax_adapter.functions(gym_env, params.replace(goal=0.3))
    spec = PlannerSpec("cem", horizon=4, options={"num_samples": 16, "num_elites": 4})
    planner, _ = build(spec, ActionSpace.box((-1.0,), (1.0,)))
    reset_key, loop_key = jax.random.split(jax.random.key(5))
    step_keys = jax.random.split(loop_key, 8)
    record = mpc.episode(env, planner, mpc.oracle(env), reset_key, step_keys)
    states = model_bias.replay_states(env, reset_key, step_keys, record.actions)
    np.testing.assert_array_equal(states.x, record.observations[:, 0])
    assert np.ptp(np.asarray(states.x)) > 0.1  # the point mass moved


@pytest.fixture(scope="module")
def horizon(tmp_path_factory):
    out = tmp_path_factory.mktemp("horizon_gap")
    return out, horizon_gap.main(["--quick", "--out", str(out)])


def test_horizon_gap_writes_finite_json_and_png(horizon):
    out, result = horizon
    _check_outputs(out, "horizon_gap", result, min_numbers=100)
    rows = result["rows"]
    hs = result["config"]["horizons"]
    assert len(hs) >= 2
    assert {(r["model"], r["horizon"]) for r in rows} == {
        (m, h) for m in horizon_gap.MODELS for h in hs
    }


def test_horizon_gap_oracle_is_exact_and_single_model_gap_grows(horizon):
    _, result = horizon
    hs = result["config"]["horizons"]
    row = {(r["model"], r["horizon"]): r for r in result["rows"]}
    for h in hs:
        assert abs(row["oracle", h]["gap_open"]) < 1e-3 * h
    # The lesson's compounding error with the quick (weak) model: the imagined return of the
    # chosen plan exceeds what the plan really gets by more per step at the longer horizon
    # (measured: -0.02 at H = 5, 0.85 at H = 20).
    short, long = row["single", min(hs)], row["single", max(hs)]
    assert long["gap_open_per_step"] > short["gap_open_per_step"] + 0.2
    assert long["gap_open"] > 1.0
