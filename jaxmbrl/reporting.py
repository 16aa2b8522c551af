"""Reporting: the machine and versions record, atomic JSON files and the learning curve.

One :func:`machine_record` is written with every result (the command line, the experiment
runner, the examples and the benchmarks use it), so figures always name the CPU and the
versions that produced them. Files are written atomically (a temporary file renamed into
place), so an interrupted write never leaves a half-written file behind, and as strict
RFC 8259 JSON (:func:`strict_json`): non-finite values are written as null.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from jaxmbrl import cpu_dot, onednn

# Distributions whose versions every record names.
_DISTRIBUTIONS = ("jaxmbrl", "jax", "jaxlib", "flax", "optax", "gymnax", "orbax-checkpoint")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@functools.cache
def _cpu() -> dict[str, Any]:
    """CPU model and its bfloat16/AMX flags from ``lscpu`` (Linux), else ``platform``."""
    info: dict[str, Any] = {"cpu": platform.processor() or "unknown", "cores": os.cpu_count()}
    # vendor, family and model: what the per-CPU choices key on (None where unknown)
    kind = cpu_dot.cpu_kind()
    info["cpu_kind"] = {
        k: v or None for k, v in zip(("vendor", "family", "model"), kind, strict=True)
    }
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return info
    lines = out.splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if "Model name" in ln), None)
    flags = next((ln for ln in lines if ln.startswith("Flags")), "")
    if model:
        info["cpu"] = model
    info["amx_bf16"] = "amx_bf16" in flags
    info["avx512_bf16"] = "avx512_bf16" in flags
    return info


def machine_record() -> dict[str, Any]:
    """Versions and machine facts recorded with every result.

    Returns:
      A JSON-serialisable dict: the versions of jaxmbrl, jax, jaxlib, flax, optax, gymnax and
      orbax-checkpoint, Python and the platform, the CPU model, core count and
      bfloat16/AMX flags, the JAX backend, its devices and their kind, and under
      ``dot_library`` the library that runs a float32 and a bfloat16 dense layer's dot
      (:func:`jaxmbrl.cpu_dot.dot_library`: ``"ynnpack"``, ``"xla"``, ... on the CPU); under
      ``dense_library`` what an ensemble with ``dense_library="auto"`` runs its layers with
      for each operand dtype (``"xla"`` or ``"onednn"``), and under ``onednn`` whether the
      oneDNN layer is built, its version, ISA and kernels (:func:`jaxmbrl.onednn.info`).
      ``cpu_kind`` holds ``/proc/cpuinfo``'s vendor, family and model.
    """
    record: dict[str, Any] = {d: _version(d) for d in _DISTRIBUTIONS}
    record |= {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        **_cpu(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device": str(jax.devices()[0].device_kind),
        "dot_library": {d: cpu_dot.dot_library(d) for d in ("float32", "bfloat16")},
        "dense_library": {d: onednn.resolve("auto", d) for d in ("float32", "bfloat16")},
        "onednn": onednn.info(),
    }
    return record


@contextlib.contextmanager
def _atomic_path(path: str | os.PathLike, suffix: str) -> Iterator[str]:
    """A temporary path beside ``path`` that replaces it when the block succeeds."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def strict_json(payload: Any) -> Any:
    """A copy of ``payload`` that :func:`json.dump` writes as strict RFC 8259 JSON.

    Non-finite values are written as null: every NaN, ``inf`` and ``-inf`` (a Python float,
    a NumPy floating scalar, or an element of a NumPy or JAX array) becomes ``None``, so the
    file holds no ``NaN``/``Infinity`` tokens, which strict parsers reject.

    Args:
      payload: a JSON-ready tree of dicts, lists, tuples, str, bool, int, float and ``None``,
        with NumPy scalars and NumPy/JAX arrays of any shape (``[...]``) allowed anywhere.

    Returns:
      The same tree built again: arrays as nested lists (``.tolist()``), NumPy scalars as
      Python ``bool``/``int``/``float``, tuples as lists, non-finite floats as ``None``; dict
      keys are kept as they are. Other values (str, None, unknown types) are returned
      unchanged (``json.dump`` rejects the unknown ones as before).
    """
    if isinstance(payload, dict):
        return {k: strict_json(v) for k, v in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [strict_json(v) for v in payload]
    if isinstance(payload, (np.ndarray, jax.Array)):
        return strict_json(np.asarray(payload).tolist())
    if isinstance(payload, np.generic):
        return strict_json(payload.item())
    if isinstance(payload, float):
        return payload if math.isfinite(payload) else None
    return payload


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically (parents must exist).

    The file is strict RFC 8259 JSON (see :func:`strict_json`): non-finite values are
    written as null.
    """
    with _atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(strict_json(payload), f, indent=2, allow_nan=False)
        f.write("\n")


def save_figure(path: str | os.PathLike, draw: Callable[[Any], None], **subplots: Any) -> None:
    """Draw with ``draw(ax)`` on a new matplotlib figure and save it to ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(**subplots)
    try:
        draw(ax)
        fig.tight_layout()
        with _atomic_path(path, pathlib.Path(path).suffix) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)


def plot_learning_curve(results: dict, path: str | os.PathLike) -> None:
    """A learning-curve PNG of an experiment's ``results`` (see :func:`jaxmbrl.runner.run`).

    Return per planned episode against real steps: the mean over seeds with the min-max band,
    each seed faintly, and the true-dynamics ("oracle") mean when it was measured. A ``None``
    (a value that was not finite) becomes NaN, which matplotlib leaves as a gap.
    """
    returns = np.asarray(results["episode_returns"], dtype=float)  # [S, J]
    steps = np.asarray(results["real_steps"], dtype=float).mean(axis=0)
    oracle = np.asarray(results.get("oracle_returns") or [[]], dtype=float)

    def draw(ax) -> None:
        for seed_returns in returns:
            ax.plot(steps, seed_returns, color="tab:blue", alpha=0.25, lw=1)
        ax.fill_between(steps, returns.min(0), returns.max(0), color="tab:blue", alpha=0.15)
        ax.plot(steps, returns.mean(0), color="tab:blue", lw=2, marker="o", label="mean")
        if oracle.shape == returns.shape:
            label = "same planner, true dynamics (mean)"
            ax.plot(steps, oracle.mean(0), color="black", ls="--", lw=1, label=label)
        ax.set_xlabel("real environment steps (random seeding episodes included)")
        ax.set_ylabel("episode return")
        n = returns.shape[0]
        ax.set_title(
            f"{results.get('algorithm', 'PETS')} on {results['env']} "
            f"({n} seed{'' if n == 1 else 's'})"
        )
        ax.grid(alpha=0.3)
        ax.legend()

    save_figure(path, draw, figsize=(6.5, 4))


__all__ = ["machine_record", "plot_learning_curve", "save_figure", "strict_json", "write_json"]
