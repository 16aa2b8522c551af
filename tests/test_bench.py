"""``jaxmbrl bench --quick`` runs every benchmark script and writes a complete report."""

import json
import math

import pytest
from json_numbers import json_numbers as _numbers

from jaxmbrl import bench
from jaxmbrl.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, bench.run(out, quick=True, peer=False, log=None)


def test_every_section_runs_and_is_saved(report):
    out, rep = report
    assert rep["failed"] == {}
    assert list(rep["sections"]) == list(bench.SECTIONS)
    on_disk = json.loads((out / "bench.json").read_text())
    assert on_disk["sections"].keys() == rep["sections"].keys()
    for name in ("bench.md", "planning.png", "scaling.png", "rollouts.png"):
        assert (out / name).stat().st_size > 0, name
    assert rep["machine"]["cores"] >= 1 and rep["machine"]["jax"]


def test_all_figures_are_finite_and_positive_where_they_are_rates(report):
    _, rep = report
    numbers = list(_numbers(rep["sections"]))
    assert len(numbers) > 100
    bad = [(p, v) for p, v in numbers if not math.isfinite(v)]
    assert not bad, bad[:5]
    rates = [v for p, v in numbers if p.endswith(("transitions_per_s", "env_steps_per_s"))]
    assert rates and all(v > 0 for v in rates)


def test_planning_rows_have_both_precisions_and_consistent_counts(report):
    _, rep = report
    (row,) = rep["sections"]["planning"]["rows"]
    assert row["workload"] == "pendulum_cem_pop50" and row["mbrl_lib"] is None
    for dtype in ("float32", "bfloat16"):
        r = row["jaxmbrl"][dtype]
        assert r["transitions_per_call"] == 50 * 20 * 15 * 5
        s = r["seconds"]
        assert 0 < s["min"] <= s["median"] <= s["max"]
        assert r["transitions_per_s"] == pytest.approx(r["transitions_per_call"] / s["median"])


def test_sharded_runs_choose_the_same_actions(report):
    _, rep = report
    runs = rep["sections"]["devices"]["runs"]
    assert [r["devices"] for r in runs] == [1, 2]
    assert runs[1]["seeds"]["shards"] == 2
    for r in runs:
        for part in ("candidates", "seeds"):
            assert r[part]["max_action_diff_vs_first"] < 1e-4


def test_cli_rejects_unknown_section(capsys):
    assert main(["bench", "--only", "nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_run_rejects_unknown_section_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown bench sections \\['nope'\\]"):
        bench.run(tmp_path / "out", sections=["planning", "nope"], log=None)
    assert not (tmp_path / "out").exists()
