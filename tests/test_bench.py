"""``benchmarks/run_all.py --quick`` runs every benchmark script and writes a complete report."""

import importlib.util
import json
import math
import pathlib
import subprocess
import sys

import pytest
from json_numbers import json_numbers as _numbers

RUN_ALL = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"


def _load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_all = _load_run_all()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, run_all.run(out, quick=True, peer=False, log=None)


def test_every_section_runs_and_is_saved(report):
    out, rep = report
    assert rep["failed"] == {}
    assert list(rep["sections"]) == list(run_all.SECTIONS)
    on_disk = json.loads((out / "bench.json").read_text())
    assert on_disk["sections"].keys() == rep["sections"].keys()
    for name in ("bench.md", "planning.png", "scaling.png", "rollouts.png"):
        assert (out / name).stat().st_size > 0, name
    assert rep["machine"]["cores"] >= 1 and rep["machine"]["jax"]
    assert rep["machine"]["device"] and rep["machine"]["jaxmbrl"]
    for name, section in rep["sections"].items():
        assert section["machine"]["cpu"], name  # every section names the machine it ran on


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


def test_script_rejects_unknown_section_in_one_line_before_any_work(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, str(RUN_ALL), "--out", str(out), "--only", "planning", "nope"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("run_all: error: ") and "invalid choice" in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""
    assert not out.exists()


def test_run_rejects_unknown_section_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown bench sections \\['nope'\\]"):
        run_all.run(tmp_path / "out", sections=["planning", "nope"], log=None)
    assert not (tmp_path / "out").exists()


def test_script_exits_1_and_names_the_failed_sections(tmp_path, monkeypatch, capsys):
    def failing_run(out, **kwargs):
        assert kwargs["sections"] == ["rollouts"] and kwargs["peer"] is False
        pathlib.Path(out, "bench.md").write_text("# jaxmbrl bench\n")
        return {"sections": {}, "failed": {"rollouts": "boom"}}

    monkeypatch.setattr(run_all, "run", failing_run)
    code = run_all.main(["--out", str(tmp_path / "o"), "--only", "rollouts", "--no-peer"])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == "# jaxmbrl bench\n"
    assert captured.err == "run_all: failed sections: rollouts\n"
