"""Tests of the ``jaxmbrl`` command: an ``mpc`` smoke run and one clear error per bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jaxmbrl.cli import main

TINY = ["--horizon", "3", "--population", "8", "--iterations", "1", "--steps", "5"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jaxmbrl.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_mpc_smoke_writes_results(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            *("mpc", "--env", "Pendulum-v1", "--planner", "cem"),
            *("--seeds", "2", "--episodes", "2", *TINY, "--out", str(out)),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("episode ") for line in printed) == 2
    results = json.loads((out / "results.json").read_text())
    returns = results["episode_returns"]
    assert len(returns) == 2 and all(len(r) == 2 for r in returns)
    assert all(isinstance(x, float) and x <= 0 for r in returns for x in r)
    assert results["env"] == "Pendulum-v1" and results["planner"] == "cem"
    assert results["planner_config"]["horizon"] == 3
    assert results["planner_config"]["num_samples"] == 8
    for name in ("jax", "jaxlib", "gymnax", "python", "platform"):
        assert results["versions"][name]
    assert [p.name for p in out.iterdir()] == ["results.json"]  # no temporary files left


def test_mpc_discrete_env_maps_to_discrete_planner(tmp_path):
    out = tmp_path / "cartpole"
    code = main(
        [
            *("mpc", "--env", "CartPole-v1", "--planner", "random", "--out", str(out)),
            *("--horizon", "3", "--population", "4", "--steps", "5"),
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["planner_config_type"] == "DiscreteRandomShootingConfig"
    assert results["episode_returns"] == [[5.0]]


def test_console_entry_point_runs(tmp_path):
    proc = run_cli(
        "mpc", "--env", "PointMass-v0", "--planner", "random", "--out", str(tmp_path), *TINY[:4]
    )
    assert proc.returncode == 0, proc.stderr
    assert "episode 1/1" in proc.stdout
    assert json.loads((tmp_path / "results.json").read_text())["episode_returns"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--env", "Nope-v0", "--planner", "cem"], "unknown environment"),
        (["--env", "Pendulum-v1", "--planner", "foo"], "--planner"),
        (["--env", "Pendulum-v1", "--planner", "cem", "--episodes", "0"], "--episodes"),
        (["--env", "Pendulum-v1", "--planner", "cem", "--horizon", "0"], "--horizon"),
        (["--env", "CartPole-v1", "--planner", "mppi"], "not available"),
        (["--env", "Pendulum-v1", "--planner", "random", "--iterations", "2"], "iterations"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, needle):
    out = tmp_path / "out"
    proc = run_cli("mpc", *args, "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "results.json").exists()


def test_unwritable_out_is_one_line_exit_2(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_cli("mpc", "--env", "Pendulum-v1", "--planner", "cem", "--out", str(blocker / "x"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and "Traceback" not in proc.stderr
    assert blocker.read_text() == "not a folder"


def test_help_lists_the_subcommands_and_flag_errors_return_2_in_process(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in ("mpc", "pets", "demo", "bench"))
    assert main(["mpc", "--help"]) == 0  # every planner's options are listed
    text = capsys.readouterr().out
    assert "mppi (continuous actions): num_samples, num_iterations, temperature" in text
    assert main(["pets", "--env", "Pendulum-v1", "--out", "x", "--episodes", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--episodes" in err[0]


def test_mpc_planner_options_reach_the_planner(tmp_path):
    out = tmp_path / "mppi"
    args = ["--env", "Pendulum-v1", "--planner", "mppi", *TINY, "--out", str(out)]
    assert main(["mpc", *args, "--planner-opt", "temperature=0.25", "--planner-opt", "beta=1"]) == 0
    config = json.loads((out / "results.json").read_text())["planner_config"]
    assert (config["temperature"], config["beta"], config["num_samples"]) == (0.25, 1, 8)


def test_bench_says_where_it_looked_when_the_scripts_are_missing(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--benchmarks", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not installed with the package" in err[0]
    assert str(tmp_path / "nowhere") in err[0] and not out.exists()


def test_bench_runs_the_checkouts_run_all_with_the_flags(tmp_path, monkeypatch):
    import jaxmbrl.cli.bench as bench_cmd

    calls = []
    monkeypatch.setattr(
        bench_cmd.subprocess,
        "run",
        lambda cmd, check: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0),
    )
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--only", "planning", "--no-peer", "--out", str(out)]) == 0
    (cmd,) = calls
    assert cmd[0] == sys.executable and cmd[1].endswith("benchmarks/run_all.py")
    assert cmd[2:] == ["--out", str(out), "--quick", "--no-peer", "--only", "planning"]


def test_bench_unknown_section_is_refused_by_run_all_before_any_work(tmp_path, capfd):
    out = tmp_path / "bench"
    assert main(["bench", "--only", "nope", "--out", str(out)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'nope'" in err[0]
    assert not out.exists()
