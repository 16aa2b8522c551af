"""Tests of ``jaxmbrl pets`` and ``jaxmbrl demo``: a tiny smoke run, resume after Ctrl-C,
the mbrl-lib preset, and one clear error line per bad input.

Every real run uses the same tiny configuration (and 2 seeds), so the compiled PETS
functions are built once per process and reused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from jaxmbrl import cli, experiments
from jaxmbrl.agents.pets import PETSConfig, pets_setup
from jaxmbrl.experiments import config_record

TINY = [
    *("--env", "Pendulum-v1", "--steps", "20", "--episodes", "2", "--seeds", "2"),
    *("--planner", "cem"),
    *("--horizon", "5", "--population", "16", "--elites", "2", "--iterations", "1"),
    *("--particles", "2", "--ensemble-size", "2", "--model-elites", "1"),
    *("--hidden", "16,16", "--epochs", "2", "--no-progress"),
]


def pets_cli(*args: str) -> int:
    return cli.main(["pets", *TINY, *args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def unknown_kind_env():
    """A ``module:function`` that returns the wrong thing."""
    return 42


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One uninterrupted tiny run: ``(exit code, out folder, stdout)``."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("full") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = pets_cli("--out", str(out))
    return code, out, stdout.getvalue()


def test_smoke_run_writes_results_and_plot(full_run):
    code, out, stdout = full_run
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["command"] == "pets" and results["preset"] == "default"
    returns = results["episode_returns"]
    assert len(returns) == 2 and all(len(r) == 2 for r in returns)  # S x E
    assert all(isinstance(x, float) and math.isfinite(x) for r in returns for x in r)
    assert results["seeds"] == [0, 1] and results["base_seed"] == 0
    assert results["real_steps"] == [[40, 60], [40, 60]]  # 20 random + 20 per episode
    assert len(results["episode_wall_s"]) == 2 and results["total_wall_s"] > 0
    config = results["config"]
    assert (config["env_name"], config["num_episodes"], config["episode_length"]) == (
        "Pendulum-v1",
        2,
        20,
    )
    planner, model = config["planner"], config["model"]
    assert (planner["name"], planner["horizon"]) == ("cem", 5)
    assert planner["options"] == {"num_samples": 16, "num_elites": 2, "num_iterations": 1}
    assert model["hidden_sizes"] == [16, 16]
    assert (model["num_members"], model["num_elites"]) == (2, 1)
    assert config["rollout"]["num_particles"] == 2 and config["train"]["max_epochs"] == 2
    # Settings not given on the command line are the preset's.
    default = PETSConfig.preset("default")
    assert config["rollout"]["propagation"] == default.rollout.propagation
    assert config["train"]["patience"] == default.train.patience
    for name in ("jaxmbrl", "jax", "jaxlib", "gymnax", "python", "platform", "device"):
        assert results["versions"][name]
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints",
        "learning_curve.png",
        "results.json",
    ]  # no temporary files left
    assert sum(line.startswith("episode ") for line in stdout.splitlines()) == 2
    assert str(out / "results.json") in stdout and str(out / "learning_curve.png") in stdout


def test_resume_after_ctrl_c_equals_uninterrupted_run(full_run, tmp_path, monkeypatch, capsys):
    _, full_out, _ = full_run
    full = json.loads((full_out / "results.json").read_text())
    out = tmp_path / "run"
    real_run = experiments.run_pets

    def ctrl_c_after_first_episode(*args, on_iteration_end, **kwargs):
        def hook(episode, results):
            on_iteration_end(episode, results)
            raise KeyboardInterrupt

        return real_run(*args, on_iteration_end=hook, **kwargs)

    monkeypatch.setattr(experiments, "run_pets", ctrl_c_after_first_episode)
    assert pets_cli("--out", str(out)) == 130
    line = one_error_line(capsys)
    assert "interrupted" in line and "--resume" in line and str(out) in line
    partial = json.loads((out / "results.json").read_text())  # the last complete results
    assert partial["episode_returns"] == [r[:1] for r in full["episode_returns"]]
    assert not (out / "learning_curve.png").exists()
    monkeypatch.undo()

    assert pets_cli("--out", str(out), "--resume") == 0
    assert "resumed from" in capsys.readouterr().out
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["episode_returns"] == full["episode_returns"]
    assert resumed["real_steps"] == full["real_steps"]
    assert resumed["total_wall_s"] > partial["total_wall_s"]  # earlier invocations count
    assert (out / "learning_curve.png").exists()

    # A finished run is not overwritten, and different settings cannot resume it.
    before = (out / "results.json").read_bytes()
    assert pets_cli("--out", str(out)) == 2
    assert "already holds a run" in one_error_line(capsys)
    assert pets_cli("--out", str(out), "--resume", "--horizon", "6") == 2
    assert "different configuration" in one_error_line(capsys)
    assert (out / "results.json").read_bytes() == before


def fake_run(config, seeds, *, out_dir, resume, progress, log, on_iteration_end, **_):
    """Stands in for ``run_pets`` where only the configuration matters (no compiling)."""
    del out_dir, resume, progress, log
    episodes = config.num_episodes
    results = {
        "seeds": list(seeds),
        "config": config_record(config),
        "env": config.env_name,
        "episode_returns": [[-1.0] * episodes for _ in seeds],
        "real_steps": [[200 * (e + 2) for e in range(episodes)] for _ in seeds],
        "episode_wall_s": [0.0] * episodes,
        "versions": {},
    }
    for e in range(episodes):
        on_iteration_end(e, results)
    return results


def test_mbrl_lib_preset_with_explicit_overrides(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "run_pets", fake_run)
    out = tmp_path / "mbrl"
    args = ["--env", "Pendulum-v1", "--preset", "mbrl-lib", "--episodes", "1", "--out", str(out)]
    code = cli.main(["pets", *args, "--horizon", "9", "--epochs", "7", "--propagation", "tsinf"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    config = results["config"]
    assert results["preset"] == "mbrl-lib"
    # mbrl-lib's PETS numbers ...
    options = config["planner"]["options"]
    assert (options["num_samples"], options["num_elites"], options["num_iterations"]) == (
        350,
        35,
        5,
    )
    assert options["alpha"] == 0.1 and config["rollout"]["num_particles"] == 20
    model = config["model"]
    assert (model["num_members"], model["num_elites"]) == (7, 5)
    assert model["hidden_sizes"] == [200] * 4 and model["activation"] == "silu"
    train = config["train"]
    assert (train["learning_rate"], train["weight_decay"], train["batch_size"]) == (
        7.5e-4,
        3e-5,
        256,
    )
    # ... except where a flag overrides them; nested configs keep the preset's other fields.
    assert config["planner"]["horizon"] == 9 and config["rollout"]["propagation"] == "tsinf"
    assert train["max_epochs"] == 7 and train["patience"] == 25  # mbrl-lib's, not default's 300
    preset = PETSConfig.preset("mbrl-lib")
    expected = PETSConfig.preset(
        "mbrl-lib",
        env_name="Pendulum-v1",
        num_episodes=1,
        planner=preset.planner.replace(horizon=9),
        rollout=dataclasses.replace(preset.rollout, propagation="tsinf"),
        train=dataclasses.replace(preset.train, max_epochs=7),
    )
    assert config == config_record(expected)
    assert (out / "learning_curve.png").exists()


def test_planner_without_elites_records_no_elites(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "run_pets", fake_run)
    out = tmp_path / "mppi"
    args = ["--env", "Pendulum-v1", "--planner", "mppi", "--population", "10", "--out", str(out)]
    assert cli.main(["pets", *args, "--episodes", "1"]) == 0
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["planner"] == {
        "name": "mppi",
        "horizon": 40,
        "options": {"num_samples": 10, "num_iterations": 2},
    }  # the default preset's, without options MPPI does not take


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--env", "Nope-v0"], "unknown environment"),
        (["--env", "Pendulum-v1", "--episodes", "0"], "--episodes"),
        (["--env", "Pendulum-v1", "--horizon", "0"], "--horizon"),
        (
            ["--env", "Pendulum-v1", "--planner", "cem", "--population", "16", "--elites", "17"],
            "--elites (17)",
        ),
        (
            ["--env", "Pendulum-v1", "--preset", "mbrl-lib", "--population", "16"],
            "from preset 'mbrl-lib'",
        ),
        (["--env", "Pendulum-v1", "--ensemble-size", "2", "--model-elites", "3"], "--model"),
        (["--env", "Pendulum-v1", "--planner", "foo"], "--planner"),
        (["--env", "CartPole-v1", "--planner", "mppi"], "'mppi' is not available"),
        (["--env", "Pendulum-v1", "--planner-opt", "nosuch=1"], "does not take nosuch"),
        (["--env", "Pendulum-v1", "--planner-opt", "temperature"], "NAME=VALUE"),
        (
            ["--env", "Pendulum-v1", "--planner", "mppi", "--planner-opt", "temperature=-1"],
            "temperature must be",
        ),
        (["--env", "Pendulum-v1", "--planner-opt", "temperature=0.5"], "does not take temperature"),
        (["--env", "Pendulum-v1", "--population", "8", "--planner-opt", "num_samples=9"], "both"),
        (["--env", "Pendulum-v1", "--planner", "mppi", "--elites", "3"], "--elites"),
        (["--env", "Pendulum-v1", "--propagation", "ts2"], "--propagation"),
        (["--env", "Pendulum-v1", "--hidden", "16,x"], "--hidden"),
        (["--env", "no_such_module_xyz:make"], "cannot import module"),
        (["--env", "test_cli_pets:no_such_function"], "has no function"),
        (["--env", "test_cli_pets:unknown_kind_env"], "must return a gymnax"),
        (["--env", "json:dumps"], "failed to build"),
        (["--env", "Pendulum-v1", "--preset", "nope"], "--preset"),
        (["--env", "Pendulum-v1", "--seed", str(2**32 - 1), "--seeds", "2"], "2**32"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    assert cli.main(["pets", *args, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "error" in line and needle in line
    assert not out.exists()  # validated before the output folder is created


def test_unwritable_out_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert cli.main(["pets", "--env", "Pendulum-v1", "--out", str(blocker / "x")]) == 2
    assert "--out" in one_error_line(capsys)
    assert blocker.read_text() == "not a folder"


def test_console_script_bad_input_is_one_line_exit_2(tmp_path):
    script = Path(sys.executable).with_name("jaxmbrl")
    if not script.exists():
        pytest.skip("the jaxmbrl console script is not installed next to this Python")
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(script), "pets", "--env", "Nope-v0", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown environment" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def tiny_config() -> PETSConfig:
    """The configuration of ``TINY``, as the command builds it (so compiles are shared)."""
    args = cli.build_parser().parse_args(["pets", *TINY, "--out", "unused"])
    return cli.pets.pets_config(args)


def test_demo_starts_afresh_and_prints_returns(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli.demo, "demo_config", tiny_config)
    monkeypatch.setattr(cli.demo, "DEMO_SEEDS", (0, 1))  # the smoke run's seeds: no new compile
    out = tmp_path / "demo"
    (out / "checkpoints" / "7").mkdir(parents=True)  # a previous demo's leftovers
    (out / "results.json").write_text('{"command": "demo"}')
    (out / "learning_curve.png").write_text("old")
    (out / "notes.txt").write_text("keep me")
    assert cli.main(["demo", "--out", str(out), "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    assert "returns per planned episode" in stdout and str(out / "learning_curve.png") in stdout
    results = json.loads((out / "results.json").read_text())
    assert results["command"] == "demo" and len(results["episode_returns"][0]) == 2
    assert not (out / "checkpoints" / "7").exists()
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_refuses_a_folder_with_other_results(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text('{"command": "pets"}')
    assert cli.main(["demo", "--out", str(out)]) == 2
    assert "not a demo's" in one_error_line(capsys)
    assert (out / "results.json").read_text() == '{"command": "pets"}'


def test_demo_default_settings():
    config = cli.demo.demo_config()
    assert config == PETSConfig.preset("default", num_episodes=5)
    assert config.env_name == "Pendulum-v1" and cli.demo.DEMO_SEEDS == (0,)
    assert cli.pets.check(config).env.episode_length == 200  # builds (nothing compiled)
    args = cli.build_parser().parse_args(["demo"])
    assert args.out == cli.demo.DEMO_OUT == str(Path("runs", "demo"))


def test_default_planner_follows_the_action_space(tmp_path, monkeypatch):
    seen = {}

    def fake(config, seeds, **kwargs):
        seen["planner"] = config.planner.name
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "run_pets", fake)
    for env, expected in [("CartPole-v1", "cem"), ("Pendulum-v1", "icem")]:
        code = cli.main(["pets", "--env", env, "--out", str(tmp_path / env), "--no-progress"])
        assert code == 130 and seen["planner"] == expected
    assert pets_setup(PETSConfig(env_name="CartPole-v1")).model_config.action_dim == 2


def test_every_planner_option_is_reachable_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "run_pets", fake_run)
    out = tmp_path / "icem"
    opts = ["--planner-opt", "colored_noise_exponent=1.5", "--planner-opt", "fixed_shapes=true"]
    args = ["--env", "Pendulum-v1", "--planner", "icem", "--episodes", "1", "--out", str(out)]
    assert cli.main(["pets", *args, *opts]) == 0
    options = json.loads((out / "results.json").read_text())["config"]["planner"]["options"]
    assert options == {
        "colored_noise_exponent": 1.5,
        "fixed_shapes": True,
        "num_iterations": 2,
        "num_samples": 100,
    }


def test_reward_model_flag_reaches_the_config(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "run_pets", fake_run)
    for choice in ("joint", "separate"):
        out = tmp_path / choice
        args = ["--env", "Pendulum-v1", "--reward-model", choice, "--episodes", "1"]
        assert cli.main(["pets", *args, "--out", str(out)]) == 0
        config = json.loads((out / "results.json").read_text())["config"]
        assert config["reward_model"] == choice


def test_planning_dtype_flag_reaches_the_config(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "run_pets", fake_run)
    for preset, flag, expected in (
        ("default", None, "float32"),
        ("mbrl-lib", None, "auto"),
        ("mbrl-lib", "float32", "float32"),
        ("default", "bfloat16", "bfloat16"),
    ):
        out = tmp_path / f"{preset}-{flag}"
        args = ["--env", "Pendulum-v1", "--preset", preset, "--episodes", "1"]
        args += ["--planning-dtype", flag] if flag else []
        assert cli.main(["pets", *args, "--out", str(out)]) == 0
        config = json.loads((out / "results.json").read_text())["config"]
        assert config["planning_matmul_dtype"] == expected
