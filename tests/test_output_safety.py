"""Runs that cannot trample each other, and a full disk: ``runner.lock_output``, the typed
``OutputLockedError``/``OutputWriteError`` and the one-line reports of ``jaxmbrl pets``.

Every PETS run here uses one tiny configuration (one seed), so the compiled functions are
built once in this process; the real full-disk test runs it once more in a subprocess.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from jaxmbrl import cli, reporting, runner
from jaxmbrl.experiments import run_pets

# Hidden layers of 256 make a checkpoint (~0.6 MB) much larger than the few blocks by which
# orbax's file layout varies between saves, so a disk sized in checkpoints fills where planned.
ARGS = [
    *("--env", "Pendulum-v1", "--steps", "20", "--episodes", "3", "--random-episodes", "1"),
    *("--epochs", "2", "--horizon", "3", "--population", "8", "--iterations", "1"),
    *("--ensemble-size", "2", "--model-elites", "1", "--hidden", "256,256", "--particles", "2"),
    "--no-progress",
]
NO_SPACE = os.strerror(errno.ENOSPC)


def pets_cli(out: pathlib.Path, *more: str) -> int:
    return cli.main(["pets", *ARGS, "--out", str(out), *more])


def config():
    """The command's configuration of ``ARGS`` (equal, so compiled functions are shared)."""
    return cli.pets.pets_config(cli.build_parser().parse_args(["pets", *ARGS, "--out", "x"]))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def disk_bytes(folder: pathlib.Path) -> int:
    return sum(f.lstat().st_blocks * 512 for f in folder.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: ``(results.json, largest checkpoint's bytes on disk)``."""
    out = tmp_path_factory.mktemp("reference") / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert pets_cli(out) == 0
    size = max(disk_bytes(step) for step in (out / runner.CHECKPOINT_DIR).iterdir())
    return json.loads((out / "results.json").read_text()), size


def same_run(results: dict, reference_results: dict) -> None:
    for name in ("episode_returns", "random_episode_returns", "real_steps"):
        assert results[name] == reference_results[name], name


# --------------------------------------------------------------------------------------
# One run per output folder
# --------------------------------------------------------------------------------------

HOLDER = """
import sys, time
from jaxmbrl import runner
with runner.lock_output(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def must_not_run(*_):
    raise AssertionError("the experiment started before the output folder was held")


def test_a_held_out_is_refused_and_a_killed_holder_leaves_it_free(reference, tmp_path, capsys):
    pytest.importorskip("fcntl")
    out = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "held"
        assert json.loads((out / runner.LOCK_FILE).read_text())["pid"] == child.pid

        # The library: refused before the experiment is even initialised (nothing compiles).
        experiment = runner.Experiment(must_not_run, must_not_run, must_not_run, must_not_run)
        info = runner.ExperimentInfo(1, 1, {}, {}, (), ())
        with pytest.raises(runner.OutputLockedError, match=f"process {child.pid}") as e:
            runner.run(experiment, info, [0], out_dir=str(out), log=None)
        assert e.value.pid == child.pid and e.value.out_dir == str(out)

        # The commands: one line, exit code 2, nothing written.
        in_use = (
            f"--out {str(out)!r} is in use by a running jaxmbrl process (pid {child.pid}); "
            "wait for it or choose another --out"
        )
        assert pets_cli(out) == 2
        assert one_error_line(capsys) == f"jaxmbrl pets: error: {in_use}"
        assert cli.main(["mpc", "--env", "Pendulum-v1", "--out", str(out)]) == 2
        assert one_error_line(capsys) == f"jaxmbrl mpc: error: {in_use}"
        assert os.listdir(out) == [runner.LOCK_FILE]

        os.kill(child.pid, signal.SIGKILL)  # no clean-up: the kernel drops the lock
        child.wait(timeout=60)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert (out / runner.LOCK_FILE).exists()  # left behind, but not held
    assert pets_cli(out) == 0
    same_run(json.loads((out / "results.json").read_text()), reference[0])
    assert not (out / runner.LOCK_FILE).exists()  # a clean release removes it


def test_a_second_hold_in_the_same_process_is_refused(tmp_path):
    pytest.importorskip("fcntl")
    with runner.lock_output(tmp_path), pytest.raises(runner.OutputLockedError):
        with runner.lock_output(tmp_path):
            pass
    with runner.lock_output(tmp_path):  # released
        pass


# --------------------------------------------------------------------------------------
# A full disk
# --------------------------------------------------------------------------------------


def test_disk_full_at_a_checkpoint_keeps_the_one_before(reference, tmp_path, monkeypatch):
    save = runner.Checkpoints.save

    def full_at_the_second(self, step, state, results):
        if step == 1:
            raise OSError(errno.ENOSPC, NO_SPACE, str(tmp_path))
        save(self, step, state, results)

    monkeypatch.setattr(runner.Checkpoints, "save", full_at_the_second)
    out = str(tmp_path / "run")
    with pytest.raises(runner.OutputWriteError) as e:
        run_pets(config(), [0], out_dir=out, log=None)
    assert (e.value.errno, e.value.step, e.value.out_dir) == (errno.ENOSPC, 0, out)
    kept = "the last complete checkpoint is step 0"
    assert str(e.value) == f"cannot write to {out} ({NO_SPACE}); {kept}"
    monkeypatch.undo()

    # Resuming from the warmup's checkpoint does not run the warmup again.
    resumed = run_pets(config(), [0], out_dir=out, resume=True, log=None)
    same_run(resumed, reference[0])


def test_pets_reports_a_failed_results_write_in_one_line(reference, tmp_path, monkeypatch, capsys):
    write_json, writes = reporting.write_json, []

    def full_at_the_second(path, payload):
        writes.append(path)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, NO_SPACE, path)
        write_json(path, payload)

    monkeypatch.setattr(reporting, "write_json", full_at_the_second)
    out = tmp_path / "run"
    assert pets_cli(out) == 1
    assert one_error_line(capsys) == (
        f"jaxmbrl pets: stopped: cannot write to {str(out)!r} ({NO_SPACE}); the checkpoint "
        "after planned episode 2 is kept; free some space and rerun with --resume"
    )
    assert len(json.loads((out / "results.json").read_text())["episode_returns"][0]) == 1
    monkeypatch.undo()

    # The plot at the end, not permitted: the run is complete and says so.
    def no_permission(results, path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    monkeypatch.setattr(reporting, "plot_learning_curve", no_permission)
    assert pets_cli(out, "--resume") == 1
    assert one_error_line(capsys).endswith(
        "the checkpoint after planned episode 3 is kept; make it writable and rerun with --resume"
    )
    monkeypatch.undo()

    assert pets_cli(out, "--resume") == 0
    same_run(json.loads((out / "results.json").read_text()), reference[0])
    assert (out / "learning_curve.png").exists()


# The real thing: ``--out`` on a small tmpfs in a private mount namespace (``unshare``), run
# by one Python process that calls the command twice (one compile), remounting in between.
DRIVER = """
import json, os, subprocess, sys
from jaxmbrl import cli

mount, out, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
print("FULL", cli.main(["pets", *args, "--out", out]), flush=True)
steps = sorted(os.listdir(os.path.join(out, "checkpoints")))
with open(os.path.join(out, "results.json")) as f:
    written = len(json.load(f)["episode_returns"][0])
print("AFTER", json.dumps({"steps": steps, "written": written}), flush=True)
subprocess.run(["mount", "-o", "remount,size=64m", mount], check=True)
print("RESUMED", cli.main(["pets", *args, "--out", out, "--resume"]), flush=True)
with open(os.path.join(out, "results.json")) as f:
    print("RESULTS", json.dumps(json.load(f)), flush=True)
"""


def namespaced(script: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=timeout
    )


def test_real_full_disk_stops_in_one_line_and_resumes(reference, tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command")
    mount = tmp_path / "disk"
    mount.mkdir()
    probe = namespaced(f"mount -t tmpfs -o size=1m tmpfs '{mount}'", timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")
    reference_results, checkpoint = reference
    # Room for the warmup's checkpoint and the first planned episode's, not for a third.
    size = int(2.5 * checkpoint)
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER))
    out = mount / "run"
    script = (
        f"mount -t tmpfs -o size={size} tmpfs '{mount}' && "
        f"exec '{sys.executable}' '{driver}' '{mount}' '{out}' '{json.dumps(ARGS)}'"
    )
    proc = namespaced(script, timeout=600)
    report = {
        line.split(" ", 1)[0]: line.split(" ", 1)[1]
        for line in proc.stdout.splitlines()
        if line.split(" ", 1)[0] in ("FULL", "AFTER", "RESUMED", "RESULTS")
    }
    assert proc.returncode == 0 and report.get("RESUMED") == "0", proc.stdout + proc.stderr
    assert report["FULL"] == "1"
    assert proc.stderr.strip() == (
        f"jaxmbrl pets: stopped: cannot write to {str(out)!r} ({NO_SPACE}); the checkpoint "
        "after planned episode 1 is kept; free some space and rerun with --resume"
    )
    assert json.loads(report["AFTER"]) == {"steps": ["0", "1"], "written": 1}
    same_run(json.loads(report["RESULTS"]), reference_results)
