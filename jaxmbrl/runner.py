"""One experiment runner for every algorithm: seeds, progress, timers, checkpoints, results.

An algorithm reaches the runner as an :class:`Experiment` (see :mod:`jaxmbrl.experiments`
for PETS's): compiled, seed-vmapped functions of the whole state, a ``warmup`` run once (for
example random seeding episodes) and an ``iterate`` run ``num_iterations`` times (for
example: train the model, then one planned episode). :func:`run` drives them for a list of
seeds and handles everything around the algorithm:

* per-seed metrics appended to a results dict after every iteration, with wall times;
* orbax checkpoints of the whole state plus the results after the warmup and every
  iteration (written to a temporary folder and renamed, so an interrupted save never
  destroys the previous checkpoint) and exact resume;
* one log line per iteration and an optional live progress bar;
* typed errors a caller can tell apart (:class:`RunExistsError`, :class:`ResumeMismatchError`,
  :class:`OutputLockedError`, :class:`OutputWriteError`);
* the output folder held by one run at a time (:func:`lock_output`), and a failed write
  there (a full disk) stopping the run with the checkpoint before it kept for resume.

The runner holds no state between runs and nothing at module level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import pathlib
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxmbrl import reporting
from jaxmbrl.types import PRNGKey, PyTree

CHECKPOINT_DIR = "checkpoints"
LOCK_FILE = ".lock"

Metrics = dict[str, Any]
"""Per-seed values of one phase: ``name -> [S]`` array or list (one value per seed)."""

ProgressFn = Callable[[Any, Any, Any], None]
"""``(seed_id, step, running_return) -> None``: what a compiled episode reports each step."""


class RunExistsError(ValueError):
    """The output folder already holds a run (pass ``resume`` to continue it)."""


class ResumeMismatchError(ValueError):
    """The run to resume was started with another configuration or other seeds."""


class RunStopped(RuntimeError):
    """The experiment cannot go on (bad data, a diverging model); the message says which seed
    and iteration. Raised by an experiment's ``warmup`` or ``iterate`` before that phase's
    results are recorded, so the results and checkpoints of the iterations before are kept.
    """


class OutputLockedError(ValueError):
    """Another live process holds the output folder (see :func:`lock_output`).

    Attributes:
      out_dir: the folder.
      pid: the holder's process id, or ``None`` when it has not written it yet.
      command: the holder's command line, or ``None`` likewise.
    """

    def __init__(self, out_dir: str | os.PathLike, pid: int | None, command: str | None):
        self.out_dir, self.pid, self.command = str(out_dir), pid, command
        holder = "another process" if pid is None else f"process {pid} ({command})"
        super().__init__(f"{self.out_dir} is in use by {holder}")


class OutputWriteError(OSError):
    """A write into the output folder failed (a full disk or quota, no permission). The run
    stops there; the checkpoints written before are complete, so ``resume`` continues from
    the last one once the cause is fixed.

    Attributes:
      out_dir: the output folder.
      step: the last complete checkpoint (0: after the warmup, ``k``: after iteration ``k``),
        or ``None`` when none was written.
      errno, strerror, filename: those of the failed write (``errno.ENOSPC``: disk full).
    """

    def __init__(self, out_dir: str | os.PathLike, step: int | None, error: OSError):
        super().__init__(error.errno, error.strerror or str(error), error.filename)
        self.out_dir, self.step = str(out_dir), step

    def __str__(self) -> str:
        kept = (
            "no checkpoint was written"
            if self.step is None
            else f"the last complete checkpoint is step {self.step}"
        )
        return f"cannot write to {self.out_dir} ({self.strerror}); {kept}"


class Clock:
    """Times the compiled calls of one iteration (blocking on their results)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable, *args: Any) -> Any:
        """``fn(*args)``, blocked on, its wall time recorded under ``name``."""
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return out


class Experiment(NamedTuple):
    """An algorithm as the runner drives it (functions only; see :class:`ExperimentInfo`).

    Attributes:
      init: ``(keys [S], seed_ids [S] int32) -> state``, compiled and seed-vmapped.
      warmup: ``(state, clock) -> (state, metrics)``, run once before the first iteration.
      iterate: ``(state, clock, progress) -> (state, metrics)``, one iteration; ``progress``
        is a :data:`ProgressFn` or ``None``.
      summary: ``(results, iteration) -> str``, the algorithm's part of the log line.
    """

    init: Callable[[PRNGKey, Any], PyTree]
    warmup: Callable[[PyTree, Clock], tuple[PyTree, Metrics]]
    iterate: Callable[[PyTree, Clock, ProgressFn | None], tuple[PyTree, Metrics]]
    summary: Callable[[dict, int], str]


@dataclasses.dataclass(frozen=True)
class ExperimentInfo:
    """What the runner records about an experiment (data only).

    Attributes:
      num_iterations: iterations to run.
      steps_per_iteration: steps one iteration's progress bar counts to.
      config: the JSON-ready configuration (compared on resume).
      record: extra fields written into the results (algorithm, environment, ...).
      warmup_metrics, iteration_metrics: names of the per-seed series each phase reports.
    """

    num_iterations: int
    steps_per_iteration: int
    config: dict
    record: dict
    warmup_metrics: tuple[str, ...]
    iteration_metrics: tuple[str, ...]


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _saveable(state: PyTree) -> PyTree:
    """PRNG keys as their raw ``uint32`` data (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)


def _from_saveable(saved: PyTree, template: PyTree) -> PyTree:
    return jax.tree.map(
        lambda s, t: jax.random.wrap_key_data(s, impl=jax.random.key_impl(t)) if _is_key(t) else s,
        saved,
        template,
    )


def _os_error_code(error: BaseException) -> int | None:
    """The OS error code of a tensorstore error (it is only written in the message, as
    ``[os_error_code='28']``), looked up along the chain of causes; ``None`` if none."""
    while error is not None:
        match = re.search(r"\[os_error_code='?(\d+)'?\]", str(error))
        if match:
            return int(match.group(1))
        error = error.__cause__ or error.__context__
    return None


def _claim_room(directory: os.PathLike, like: os.PathLike) -> None:
    """Fail now, with the ``OSError`` (ENOSPC, EDQUOT, EFBIG) a write would meet, if
    ``directory`` has no room for as much as the files under ``like`` take on disk: that
    much is allocated in a temporary file there, then freed. Nothing without ``fallocate``."""
    if not hasattr(os, "posix_fallocate"):
        return
    size = sum(f.lstat().st_blocks * 512 for f in pathlib.Path(like).rglob("*") if f.is_file())
    if size == 0:
        return
    try:
        with tempfile.TemporaryFile(dir=directory) as f:
            os.posix_fallocate(f.fileno(), 0, size)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        # Another failure (a file system that cannot allocate ahead) proves nothing.


class Checkpoints:
    """Orbax checkpoints of the whole state plus the results so far, one per iteration.

    Opening them removes the temporary folders of saves that never finished (a full disk,
    a killed process): hold the output folder (:func:`lock_output`) first, or another live
    run's save in progress goes too.
    """

    def __init__(self, directory: pathlib.Path):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        options = ocp.CheckpointManagerOptions(
            max_to_keep=2, enable_async_checkpointing=False, cleanup_tmp_directories=True
        )
        self.manager = ocp.CheckpointManager(
            directory, options=options, item_names=("state", "results")
        )

    def latest(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: PyTree, results: dict) -> None:
        """Save checkpoint ``step``; a failed write (a full disk) raises ``OSError``, and
        the checkpoints before stay complete.

        Room for one more checkpoint as large as the last is claimed first, so that a disk
        that filled up is found before orbax writes: tensorstore reports it from its own
        threads, which also print tracebacks on stderr.
        """
        latest = self.latest()
        if latest is not None:
            _claim_room(self.manager.directory, self.manager.directory / str(latest))
        ocp = self._ocp
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(_saveable(state)), results=ocp.args.JsonSave(results)
        )
        try:
            self.manager.save(step, args=args, force=True)
            self.manager.wait_until_finished()
        except ValueError as e:  # tensorstore's failed writes
            code = _os_error_code(e)
            if code is None:
                raise
            raise OSError(code, os.strerror(code), str(self.manager.directory)) from e

    def restore(self, step: int, template: PyTree) -> tuple[PyTree, dict]:
        ocp = self._ocp
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _saveable(template))
        out = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), results=ocp.args.JsonRestore()
            ),
        )
        return _from_saveable(out["state"], template), out["results"]

    def close(self) -> None:
        self.manager.close()


# --------------------------------------------------------------------------------------
# The output folder
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def lock_output(out_dir: str | os.PathLike) -> Iterator[None]:
    """Hold the output folder ``out_dir`` (created if needed) so that no other run writes to
    it meanwhile.

    An exclusive, non-blocking ``flock`` on ``out_dir/.lock``, which names this process's pid
    and command line for the message of the next one to try. The kernel releases the lock
    when its holder exits in any way (``SIGKILL`` included), so it is never left stale; a
    clean release also removes the file. The lock is advisory (it keeps out only those that
    take it: :func:`run` with ``out_dir`` and the ``jaxmbrl`` commands) and not reentrant (a
    second hold in the same process is refused too). Where :mod:`fcntl` is missing (Windows)
    it does nothing.

    Raises:
      OutputLockedError: another live process holds ``out_dir``.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = pathlib.Path(out_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _take_lock(fcntl, path, out_dir)
    try:
        with contextlib.suppress(OSError):  # naming the holder is a courtesy (the disk may be full)
            holder = {"pid": os.getpid(), "command": shlex.join(sys.argv)}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # before the release: a next holder makes a new file
        os.close(fd)


def _take_lock(fcntl, path: pathlib.Path, out_dir) -> int:
    """A descriptor of ``path`` open and locked; the file at ``path`` is the one locked."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputLockedError(out_dir, holder.get("pid"), holder.get("command")) from None
        except BaseException:
            os.close(fd)
            raise
        # The holder before may have removed the file between our open and our lock.
        with contextlib.suppress(FileNotFoundError):
            on_disk, locked = os.stat(path), os.fstat(fd)
            if (on_disk.st_dev, on_disk.st_ino) == (locked.st_dev, locked.st_ino):
                return fd
        os.close(fd)


def _holder(fd: int) -> dict:
    """What the lock file names: ``{"pid": ..., "command": ...}``, or ``{}``."""
    try:
        holder = json.loads(os.pread(fd, 65536, 0))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


@contextlib.contextmanager
def _writing(out_dir: str | None, step: int | None) -> Iterator[None]:
    """An ``OSError`` inside as :class:`OutputWriteError` (``step``: the last complete
    checkpoint); nothing changed when ``out_dir`` is ``None``."""
    try:
        yield
    except OSError as e:
        if out_dir is None or isinstance(e, OutputWriteError):
            raise
        raise OutputWriteError(out_dir, step, e) from e


# --------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------


class ProgressBar:
    """A live bar for one iteration: steps done (slowest seed) and the mean running return.

    Call it as a :data:`ProgressFn`; it does nothing unless started.
    """

    def __init__(self, num_seeds: int, length: int):
        self.num_seeds, self.length = num_seeds, length
        self._bar = None

    def start(self, description: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._steps = [0] * self.num_seeds
        self._returns = [0.0] * self.num_seeds
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("running return {task.fields[ret]:9.1f}"),
            TimeElapsedColumn(),
            transient=True,
        )
        self._task = self._bar.add_task(description, total=self.length, ret=0.0)
        self._bar.start()

    def __call__(self, seed_id, step, running_return) -> None:
        if self._bar is None:
            return
        s = int(seed_id) % self.num_seeds
        self._steps[s] = int(step) + 1
        self._returns[s] = float(running_return)
        mean = sum(self._returns) / self.num_seeds
        self._bar.update(self._task, completed=min(self._steps), ret=mean)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def mean_text(per_seed: list[list[float]], index: int | None = None) -> str:
    """The mean of every value (or of each seed's ``index``-th) as ``%.3g``, or ``n/a``."""
    values = [v for lst in per_seed for v in (lst if index is None else lst[index:][:1])]
    values = [v for v in values if v is not None]
    return f"{sum(values) / len(values):.3g}" if values else "n/a"


def _new_results(info: ExperimentInfo, seeds: list[int]) -> dict:
    series = (*info.warmup_metrics, *info.iteration_metrics)
    return {
        "seeds": seeds,
        "config": info.config,
        **info.record,
        **{name: [[] for _ in seeds] for name in series},
        "iteration_wall_s": [],
        "first_call_wall_s": {},
        "versions": reporting.machine_record(),
    }


def _append(results: dict, metrics: Metrics, clock: Clock, walls: bool) -> None:
    """Append each metric's per-seed ``[S]`` (or ``[S, n]``) values, non-finite ones as ``None``.

    ``None`` keeps the results, their JSON checkpoint and a resumed run strict JSON.
    """
    for name, values in metrics.items():
        per_seed = reporting.strict_json(np.asarray(values))
        for s, v in enumerate(per_seed):  # a value, or a list per seed
            results[name][s].extend(v if isinstance(v, list) else [v])
    if walls:
        for name, seconds in clock.seconds.items():
            results.setdefault(f"{name}_wall_s", []).append(seconds)


def _open_checkpoints(out_dir, resume, state, results, say):
    """``(checkpoints or None, state, results, iterations done)`` for ``out_dir``; the
    iterations done are ``None`` when nothing was restored (not even the warmup)."""
    if out_dir is None:
        return None, state, results, None
    ckpt = Checkpoints(pathlib.Path(out_dir).absolute() / CHECKPOINT_DIR)
    latest = ckpt.latest()
    if latest is None:
        if resume:
            say(f"nothing to resume in {out_dir}; starting afresh")
        return ckpt, state, results, None
    if not resume:
        ckpt.close()
        raise RunExistsError(f"{out_dir} already holds a run; pass resume to continue it")
    state, saved = ckpt.restore(latest, state)
    if saved["config"] != results["config"] or saved["seeds"] != results["seeds"]:
        ckpt.close()
        raise ResumeMismatchError(
            f"cannot resume from {out_dir}: it holds a run with a different configuration or seeds"
        )
    # What an "auto" setting resolved to on this machine must match too (a run saved before
    # a field was recorded is not checked on it).
    for name in (k for k in results if k.endswith("_resolved") and k in saved):
        if saved[name] != results[name]:
            ckpt.close()
            raise ResumeMismatchError(
                f"cannot resume from {out_dir}: its {name} is {saved[name]!r}, but here the "
                f"same configuration resolves to {results[name]!r} (another machine or "
                "environment); set it explicitly to resume"
            )
    saved["versions"] = results["versions"]
    done = latest
    say(f"resumed from {out_dir} after {done} iteration(s)")
    return ckpt, state, saved, done


def run(
    experiment: Experiment,
    info: ExperimentInfo,
    seeds: list[int],
    *,
    out_dir: str | None = None,
    resume: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = print,
    on_iteration_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """Run an experiment for several seeds at once (one vmapped program per phase).

    Args:
      experiment: the algorithm's compiled functions.
      info: what to record about it.
      seeds: integer seeds ``[S]`` (``jax.random.key(seed)`` each).
      out_dir: where checkpoints go (``out_dir/checkpoints``); ``None`` keeps nothing. The
        run holds it (:func:`lock_output`) from start to end.
      resume: continue from the latest complete checkpoint in ``out_dir`` (same config and
        seeds). Results equal those of an uninterrupted run.
      progress: show a live bar per iteration.
      log: where the one-line-per-iteration summaries go (``None``: silent).
      on_iteration_end: ``(iteration, results)`` after every iteration and its checkpoint
        (raising here interrupts the run cleanly; with ``out_dir``, an ``OSError`` is taken
        for a failed write of the results there and raised as :class:`OutputWriteError`).

    Returns:
      The results dict: ``seeds``, ``config``, ``info.record``'s fields, one list per seed
      for every metric, ``<phase>_wall_s`` lists (one entry per iteration) and
      ``first_call_wall_s`` (the first iteration's phases, compilation included),
      ``versions`` (:func:`jaxmbrl.reporting.machine_record`).

    Raises:
      RunExistsError: ``out_dir`` holds a run and ``resume`` is false.
      ResumeMismatchError: the run in ``out_dir`` has another configuration or seeds.
      OutputLockedError: another live process holds ``out_dir`` (nothing is done).
      OutputWriteError: writing into ``out_dir`` failed (a full disk); the checkpoints
        before are kept, and ``resume`` continues from the last one.
    """
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    say = log or (lambda _: None)
    # Held from before anything is read or compiled until the last checkpoint is written.
    with lock_output(out_dir) if out_dir is not None else contextlib.nullcontext():
        keys = jax.vmap(jax.random.key)(np.asarray(seeds, np.uint32))
        state = experiment.init(keys, np.arange(len(seeds), dtype=np.int32))
        results = _new_results(info, list(seeds))
        ckpt, state, results, done = _open_checkpoints(out_dir, resume, state, results, say)
        bar = ProgressBar(len(seeds), info.steps_per_iteration) if progress else None
        try:
            if done is None:  # nothing restored: the warmup first
                clock = Clock()
                state, metrics = experiment.warmup(state, clock)
                _append(results, metrics, clock, walls=False)
                results["warmup_wall_s"] = clock.seconds
                say(experiment.summary(results, -1))
                if ckpt is not None:
                    with _writing(out_dir, None):
                        ckpt.save(0, state, results)
            start = done or 0
            for it in range(start, info.num_iterations):
                state = _iteration(experiment, info, state, results, it, it == start, bar, say)
                if ckpt is not None:
                    with _writing(out_dir, it):
                        ckpt.save(it + 1, state, results)
                if on_iteration_end is not None:
                    with _writing(out_dir, it + 1):
                        on_iteration_end(it, results)
        finally:
            if ckpt is not None:
                ckpt.close()
    return results


def _iteration(experiment, info, state, results, it, first, bar, say):
    clock = Clock()
    if bar is not None:
        bar.start(f"iteration {it + 1}/{info.num_iterations}")
    try:
        state, metrics = experiment.iterate(state, clock, bar)
    finally:
        if bar is not None:
            bar.stop()
    if first:  # the first calls compile (unless this process compiled them before)
        results["first_call_wall_s"] = dict(clock.seconds)
    _append(results, metrics, clock, walls=True)
    results["iteration_wall_s"].append(sum(clock.seconds.values()))
    say(experiment.summary(results, it))
    return state


__all__ = [
    "CHECKPOINT_DIR",
    "LOCK_FILE",
    "Checkpoints",
    "Clock",
    "Experiment",
    "ExperimentInfo",
    "OutputLockedError",
    "OutputWriteError",
    "ProgressBar",
    "ResumeMismatchError",
    "RunExistsError",
    "RunStopped",
    "lock_output",
    "mean_text",
    "run",
]
