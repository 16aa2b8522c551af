"""The experiment runner: seeds as one program, exact resume, typed errors, results layout."""

import dataclasses

import numpy as np
import pytest
from test_pets import TINY

from jaxmbrl.experiments import config_record, run_pets
from jaxmbrl.runner import ResumeMismatchError, RunExistsError


def test_vmapped_seeds_equal_separate_runs():
    both = run_pets(TINY, [3, 5], log=None)
    alone = [run_pets(TINY, [s], log=None) for s in (3, 5)]
    for i in range(2):
        # Equal up to float rounding: a batched reduction may sum in another order.
        np.testing.assert_allclose(
            both["episode_returns"][i], alone[i]["episode_returns"][0], rtol=1e-5
        )
        assert both["random_episode_returns"][i] == alone[i]["random_episode_returns"][0]
    assert both["episode_returns"][0] != both["episode_returns"][1]


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    full = run_pets(TINY, [1, 2], log=None)

    def interrupt(episode, results):
        if episode == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pets(TINY, [1, 2], out_dir=str(tmp_path), log=None, on_iteration_end=interrupt)
    resumed = run_pets(TINY, [1, 2], out_dir=str(tmp_path), resume=True, log=None)
    assert resumed["episode_returns"] == full["episode_returns"]
    assert resumed["real_steps"] == full["real_steps"]
    # A finished run is not silently overwritten, and a different config cannot resume it.
    with pytest.raises(RunExistsError, match="already holds a run"):
        run_pets(TINY, [1, 2], out_dir=str(tmp_path), log=None)
    other = dataclasses.replace(TINY, planner=TINY.planner.replace(horizon=7))
    with pytest.raises(ResumeMismatchError, match="different configuration"):
        run_pets(other, [1, 2], out_dir=str(tmp_path), resume=True, log=None)


def test_resume_refuses_an_auto_setting_that_resolves_differently(tmp_path, monkeypatch):
    from jaxmbrl.models import ensemble as ens

    auto = dataclasses.replace(TINY, planning_matmul_dtype="auto")
    monkeypatch.setattr(ens, "resolve_matmul_dtype", lambda dtype, library: "float32")

    def interrupt(episode, results):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pets(auto, [1], out_dir=str(tmp_path), log=None, on_iteration_end=interrupt)
    # The same configuration on a machine where "auto" means bfloat16 must not continue it.
    monkeypatch.setattr(ens, "resolve_matmul_dtype", lambda dtype, library: "bfloat16")
    with pytest.raises(ResumeMismatchError, match="planning_matmul_dtype_resolved is 'float32'"):
        run_pets(auto, [1], out_dir=str(tmp_path), resume=True, log=None)


def test_results_layout_and_real_steps():
    results = run_pets(TINY, 2, log=None)
    assert np.shape(results["episode_returns"]) == (2, 2)
    assert results["real_steps"] == [[60, 90], [60, 90]]
    assert all(np.isfinite(v) for seed in results["model_val_error"] for v in seed)
    assert len(results["episode_wall_s"]) == 2


def test_config_record_round_trips_through_json():
    import json

    record = config_record(TINY)
    assert json.loads(json.dumps(record)) == record
    assert record["planner"] == {
        "name": "cem",
        "horizon": 6,
        "options": {"alpha": 0.1, "num_elites": 4, "num_iterations": 2, "num_samples": 32},
    }
    assert record["model"]["hidden_sizes"] == [32, 32]


def test_no_seeds_is_an_error():
    with pytest.raises(ValueError, match="at least one seed"):
        run_pets(TINY, [], log=None)
