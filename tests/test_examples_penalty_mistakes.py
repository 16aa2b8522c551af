"""examples/uncertainty_penalty.py and examples/common_mistakes.py: outputs and stable facts.

The quick runs are small and their returns noisy, so the behavioural checks here are the
facts that hold by construction (expectation propagation has one particle, so its std
penalty is 0; the two arms of the data-refresh row share their first episode) or by a wide
margin (a raw deg/s model against a normalised one; a deterministic model's coverage).
"""

import json
import math

import common_mistakes
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import uncertainty_penalty as up
from json_numbers import numbers as _numbers

import jaxmbrl
from jaxmbrl.models import ensemble


def _check_outputs(summary, tmp_path, name):
    path = tmp_path / f"{name}.json"
    assert path.exists() and (tmp_path / f"{name}.png").stat().st_size > 10_000
    written = json.loads(path.read_text())  # strict JSON: NaN or inf would have been written so
    assert written == json.loads(json.dumps(summary))
    numbers = list(_numbers(written))
    assert len(numbers) > 100
    assert all(math.isfinite(x) for x in numbers)
    assert written["mode"] == "quick" and written["wall_time_s"] > 0
    return written


# --- uncertainty_penalty.py ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def penalty_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uncertainty_penalty")
    return up.main(["--quick", "--out", str(tmp)]), tmp


def test_penalty_quick_run_writes_finite_json_and_png(penalty_run):
    summary, tmp = penalty_run
    written = _check_outputs(summary, tmp, "uncertainty_penalty")
    s = up.QUICK
    res = written["results"]["narrow"]
    got = [(c["propagation"], c["lambda"]) for c in res["configs"]]
    assert got == up.configurations(s)
    assert {p for p, _ in got} == {"expectation", "ts1", "tsinf"}
    assert len({lam for _, lam in got}) == 2
    for c in res["configs"]:
        for values in c["per_seed"].values():
            assert len(values) == s.num_seeds
        assert -s.num_steps * 17.0 <= c["return"]["min"] <= c["return"]["max"] <= 0.0
        assert 0.0 <= c["share_outside_data"]["min"] <= c["share_outside_data"]["max"] <= 1.0
        assert c["distance_to_data"]["min"] > 0.0 and c["disagreement"]["min"] > 0.0
    # The narrow data never sees the pendulum above the horizontal.
    assert res["data_cos_theta_max"] < 0.0
    assert res["data_transitions"] == s.narrow_episodes * s.narrow_steps


def test_expectation_propagation_runs_without_a_penalty(penalty_run):
    # One deterministic particle has no spread: the example runs expectation at lambda 0
    # only, and the library refuses mean - lambda * std there instead of ignoring lambda.
    summary, _ = penalty_run
    cs = [c for c in summary["results"]["narrow"]["configs"] if c["propagation"] == "expectation"]
    assert [c["lambda"] for c in cs] == [0.0]
    with pytest.raises(ValueError, match="expectation propagation follows one"):
        jaxmbrl.RolloutConfig(propagation="expectation", risk="mean_std", risk_lambda=3.0)


def _synthetic(num_data=50, num_steps=12, horizon=4):
    s = up.QUICK
    mc = up.model_config(s)
    key = jax.random.key(0)
    obs = jax.random.normal(key, (num_data, 3))
    data = up.Data(obs, jnp.zeros((num_data, 1)), obs)
    state = ensemble.init(mc, jax.random.key(1))
    rewards = -jnp.arange(num_steps, dtype=jnp.float32)
    windows = jnp.arange(num_steps)[:, None] + jnp.arange(horizon)[None]
    future = jnp.where(windows < num_steps, rewards[jnp.minimum(windows, num_steps - 1)], 0.0)
    traj = up.Trajectory(obs[:num_steps], jnp.zeros((num_steps, 1)), rewards, future.sum(-1))
    batch = lambda tree: jax.tree.map(lambda x: x[None], tree)
    return s, horizon, batch(data), batch(state), batch(traj), obs


def test_measure_on_hand_built_trajectories():
    s, horizon, data, state, traj, obs = _synthetic()
    m = up.measure(s, horizon, data, state, traj)
    # Visited states that are training states: distance 0, nothing outside; the imagined
    # H-step returns equal the real ones: no optimism.
    np.testing.assert_allclose(m["distance_to_data"], 0.0, atol=1e-6)
    np.testing.assert_allclose(m["share_outside_data"], 0.0)
    np.testing.assert_allclose(m["optimism"], 0.0, atol=1e-5)
    np.testing.assert_allclose(m["return"], -float(np.arange(12).sum()))
    assert float(m["disagreement"][0]) > 0.0  # independently initialised members differ
    # Far from every training state: the distance is the shift in data-std units.
    shift = 100.0 * jnp.std(obs, axis=0)[0]
    far = traj._replace(obs=traj.obs.at[..., 0].add(shift))
    m_far = up.measure(s, horizon, data, state, far)
    assert float(m_far["distance_to_data"][0]) > 90.0
    np.testing.assert_allclose(m_far["share_outside_data"], 1.0)


# --- common_mistakes.py ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mistakes_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("common_mistakes")
    return common_mistakes.main(["--quick", "--out", str(tmp)]), tmp


def test_mistakes_quick_run_writes_finite_json_and_png(mistakes_run):
    summary, tmp = mistakes_run
    written = _check_outputs(summary, tmp, "common_mistakes")
    assert written["rows"] == ["a", "b", "c", "d"]
    assert "horizon_gap.py" in json.dumps(written["not_covered_here"])
    for row in written["results"].values():
        assert row["symptom"] and row["fix"] and row["wall_s"] > 0


def test_unnormalised_training_ends_far_worse_than_normalised(mistakes_run):
    a = mistakes_run[0]["results"]["a"]
    raw, fixed = a["raw_deg"]["heldout_rel_mse"], a["normalised_deg"]["heldout_rel_mse"]
    # Measured in quick mode: about 10 against 0.5 (1.0 = predicting the mean).
    assert raw["min"] > 3.0 * fixed["max"]
    assert raw["min"] > 1.0 > fixed["max"]


def test_deterministic_model_is_overconfident_on_a_stochastic_env(mistakes_run):
    b = mistakes_run[0]["results"]["b"]
    det, gauss = b["deterministic"], b["gaussian"]
    # Measured in quick mode: about 40 % against 95 % of outcomes in the 90 % interval.
    assert det["coverage90"]["max"] < 0.7 < gauss["coverage90"]["min"]
    assert det["nll"]["min"] > gauss["nll"]["max"]
    assert det["std_over_rmse"]["max"] < 1.0


def test_reward_model_from_a_narrow_slice_errs_more_on_held_out_data(mistakes_run):
    c = mistakes_run[0]["results"]["c"]
    assert 0.2 < c["slice_share_of_data"] < 0.8
    assert (
        c["slice_reward"]["reward_rmse_near_goal"]["min"]
        > c["joint_reward"]["reward_rmse_near_goal"]["max"]
    )


def test_no_refresh_keeps_its_data_and_shares_the_first_episode(mistakes_run):
    d = mistakes_run[0]["results"]["d"]
    s = common_mistakes.QUICK
    no, fix = d["no_refresh"], d["pets"]
    # Same keys, same model: the first planned episode is the same in both arms.
    np.testing.assert_array_equal(
        np.asarray(no["episode_returns"])[:, 0], np.asarray(fix["episode_returns"])[:, 0]
    )
    t = s.pets_episode_length
    assert no["buffer_rows_after_episode"] == [t] * s.pets_episodes  # the random episode only
    assert fix["buffer_rows_after_episode"] == [t * (e + 2) for e in range(s.pets_episodes)]


def test_rows_flag_selects_rows(tmp_path):
    summary = common_mistakes.main(["--quick", "--rows", "a", "--out", str(tmp_path)])
    assert list(summary["results"]) == ["a"]
    assert (tmp_path / "common_mistakes.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        common_mistakes.main(["--quick", "--rows", "a,z", "--out", str(tmp_path)])
