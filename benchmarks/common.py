"""Shared pieces of the benchmark scripts: machine record, statistics, the matmul peak, and
where the peer (mbrl-lib) environment lives.

Every script in ``benchmarks/`` runs on its own (``python benchmarks/NAME.py --out DIR``) and
is also run by ``benchmarks/run_all.py`` (which ``jaxmbrl bench`` calls), which collects the
JSON files they write.

The peer environment is mbrl-lib 0.2.0 with torch in its own virtual environment
(``PEER_TORCH``, default ``/tmp/peer-torch``); the mbrl-lib columns are left empty when it
does not exist. ``SHARED`` (``JAXMBRL_SHARED``, default ``../shared`` beside the checkout) is
where the peers' own benchmark scripts are looked up, if present.
"""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import reporting

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("JAXMBRL_SHARED", ROOT.parent / "shared"))
PEER_TORCH = pathlib.Path(os.environ.get("PEER_TORCH", "/tmp/peer-torch"))
PEER_JAX = pathlib.Path(os.environ.get("PEER_JAX", "/tmp/peer-jax"))
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


def peer_python() -> pathlib.Path | None:
    """The python of the peer environment (``PEER_TORCH``, default ``/tmp/peer-torch``), or
    ``None`` if it is not built."""
    python = PEER_TORCH / "bin" / "python"
    return python if python.exists() else None


def stats(xs) -> dict:
    """``{"median", "min", "max", "n"}`` of a list of numbers."""
    xs = [float(x) for x in xs]
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt(s: dict | None, digits: int = 3) -> str:
    """``median [min-max]`` of a :func:`stats` dict, or ``n/a``."""
    if not s:
        return "n/a"
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def machine() -> dict:
    """The machine and versions record of every result: :func:`jaxmbrl.reporting.machine_record`
    (versions of jaxmbrl, jax, jaxlib and the rest, Python, CPU model, cores, bf16/AMX flags,
    backend, devices and their kind under ``device``)."""
    return reporting.machine_record()


def timed(fn, reps: int) -> list[float]:
    """Seconds of ``reps`` calls of ``fn()`` (each blocked on)."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return times


def compile_stats(jitted, *args) -> tuple[object, float, float | None]:
    """``(compiled, compile seconds, temporary memory MiB or None)`` of ``jitted(*args)``."""
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    seconds = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
    return compiled, seconds, None if temp is None else temp / 2**20


def matmul_peak(quick: bool) -> dict:
    """The practical fp32 matmul rate: XLA on ``n x n`` (4096, or 2048 with ``quick``), and
    torch's sgemm in the peer venv (tuned malloc) when it exists. ``peak_gflops`` is the
    larger of the two, the denominator of every "% of peak" in the reports."""
    n = 2048 if quick else 4096
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    reps = 3 if quick else 7
    out = {"n": n, "xla_gflops": 2 * n**3 / statistics.median(timed(lambda: f(a), reps)) / 1e9}
    python = peer_python()
    if python is not None:
        code = (
            f"import torch,time,statistics;torch.set_num_threads({os.cpu_count()});n={n};"
            "a=torch.randn(n,n);a@a;ts=[]\n"
            f"for _ in range({reps}):\n"
            " t=time.perf_counter();a@a;ts.append(time.perf_counter()-t)\n"
            "print(2*n**3/statistics.median(ts)/1e9)"
        )
        res = subprocess.run(
            [str(python), "-c", code],
            capture_output=True,
            text=True,
            env=dict(os.environ, **TUNED_MALLOC),
            check=False,
        )
        try:
            out["torch_gflops"] = float(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out["torch_error"] = res.stderr[-500:]
    out["peak_gflops"] = max(v for k, v in out.items() if k.endswith("_gflops"))
    return out


def write_json(path: pathlib.Path, report: dict) -> None:
    """Write ``report`` to ``path`` (folders created) atomically and say so."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    reporting.write_json(path, report)
    print(f"wrote {path}", flush=True)
