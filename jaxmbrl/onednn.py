"""The ensemble's dense layers through oneDNN on the CPU: an XLA FFI custom call.

jaxlib 0.10.2's XLA:CPU runs dots with YNNPACK or its own emitter (:mod:`jaxmbrl.cpu_dot`);
neither uses a CPU's bfloat16 matrix instructions well. oneDNN's matmul picks its kernel from
the CPU's features (Intel AMX, or ``avx512_core_bf16`` on AMD Zen 4/5 and Intel Cooper Lake
and later), so one layer ``act(x @ w + b)`` goes through ``libjaxmbrl_onednn``, built from
``jaxmbrl/native/onednn_dense.cc`` against the oneDNN of the ``onednn`` extra
(``onednn-cpu-gomp``, oneDNN 3.2 with OpenMP) and jaxlib's FFI headers.

Building and checking::

    python -m jaxmbrl.onednn build    # g++ (or $CXX), about 5 s; `make install` runs it
    python -m jaxmbrl.onednn info     # is it built, which ISA and kernels oneDNN picks

Without the build (no compiler, no x86-64 Linux, no ``onednn`` extra) :func:`available` is
``False`` and every layer runs with XLA's dot: nothing else changes.

Which layers use it is the ensemble's ``dense_library`` (``"auto"``, ``"xla"``,
``"onednn"``): :func:`resolve` turns ``"auto"`` into ``"onednn"`` only on the CPU backend,
when the library is built, and for an operand dtype :func:`preferred_dtypes` names for this
CPU. The custom call is differentiable in forward and reverse mode (one JVP rule; the
derivatives run with XLA's dots) and batches under ``vmap`` (its leading axes are looped over
inside the call).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shlex
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from jaxmbrl import cpu_dot
from jaxmbrl.types import Array

#: The C++ source of the custom call.
SOURCE = Path(__file__).with_name("native") / "onednn_dense.cc"

#: The FFI target name registered with XLA for the CPU platform.
TARGET = "jaxmbrl_onednn_dense"

#: Dense library names an ensemble accepts (``EnsembleConfig.dense_library``).
LIBRARIES = ("auto", "xla", "onednn")

#: Activations the custom call fuses into the matmul (oneDNN post-ops) -> its attribute code.
#: Other activations run in XLA after an unfused call.
FUSED = MappingProxyType({"silu": 1, "swish": 1, "relu": 2, "tanh": 3})

_ACTS = {0: None, 1: jax.nn.silu, 2: jax.nn.relu, 3: jnp.tanh}

#: Environment variable that overrides what ``"auto"`` resolves to in this process (``"xla"``
#: or ``"onednn"``; unset or ``"auto"``: the rule of :func:`resolve`), e.g. to compare whole
#: runs without changing their configuration. Read when a function is traced.
ENV_VAR = "JAXMBRL_DENSE"

#: Environment variable naming a directory for the built library (default: ``native/_build``
#: beside this module, or a per-user cache when that is not writable).
DIR_VAR = "JAXMBRL_NATIVE_DIR"


def _prefix() -> Path:
    """Where pip put the ``onednn`` extra's data files (``lib/libdnnl.so``, ``include/``)."""
    return Path(os.environ.get("DNNL_ROOT", sys.prefix))


def _fingerprint() -> str:
    import jaxlib

    h = hashlib.sha256(SOURCE.read_bytes())
    h.update(jaxlib.__version__.encode())
    header = _prefix() / "include" / "oneapi" / "dnnl" / "dnnl_version.h"
    if header.exists():
        h.update(header.read_bytes())
    return h.hexdigest()[:12]


def _build_dirs() -> list[Path]:
    if os.environ.get(DIR_VAR):
        return [Path(os.environ[DIR_VAR])]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jaxmbrl"
    return [SOURCE.parent / "_build", cache]


def _library_name() -> str:
    return f"libjaxmbrl_onednn-{_fingerprint()}.so"


def library_path() -> Path | None:
    """The built library for this source, jaxlib and oneDNN, or ``None`` if not built."""
    name = _library_name()
    for d in _build_dirs():
        if (d / name).exists():
            return d / name
    return None


def build_command(out: Path) -> list[str]:
    """The compiler command that builds the library into ``out``."""
    prefix = _prefix()
    lib = prefix / "lib"
    cxx = shlex.split(os.environ.get("CXX", "g++"))
    return [
        *cxx,
        "-O2",
        "-std=c++17",
        "-shared",
        "-fPIC",
        "-w",  # jaxlib's FFI headers warn under g++ 12
        f"-I{jax.ffi.include_dir()}",
        f"-I{prefix / 'include'}",
        str(SOURCE),
        f"-L{lib}",
        "-ldnnl",
        f"-Wl,-rpath,{lib.resolve()}",
        "-o",
        str(out),
    ]


def build(*, verbose: bool = False) -> Path:
    """Compile the custom call (about 5 s) and return the library's path.

    Raises:
      RuntimeError: not x86-64 Linux, oneDNN's headers or library missing (install the
        ``onednn`` extra), or the compiler failed (its output is in the message).
    """
    if sys.platform != "linux" or sysconfig.get_platform().split("-")[-1] != "x86_64":
        raise RuntimeError(f"the oneDNN layer is built on x86-64 Linux only, not {sys.platform}")
    prefix = _prefix()
    if (
        not (prefix / "include" / "oneapi" / "dnnl" / "dnnl.hpp").exists()
        or not (prefix / "lib" / "libdnnl.so").exists()
    ):
        raise RuntimeError(
            f"oneDNN not found under {prefix} (include/oneapi/dnnl/dnnl.hpp, lib/libdnnl.so): "
            "pip install 'jaxmbrl[onednn]', or set DNNL_ROOT"
        )
    name = _library_name()
    errors = []
    for d in _build_dirs():
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            errors.append(f"{d}: {e}")
            continue
        if not os.access(d, os.W_OK):
            errors.append(f"{d}: not writable")
            continue
        tmp = d / f".{name}.{os.getpid()}.tmp"
        cmd = build_command(tmp)
        if verbose:
            print(" ".join(shlex.quote(c) for c in cmd), flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"building the oneDNN layer failed:\n{proc.stderr[-4000:]}")
        tmp.replace(d / name)  # atomic: a concurrent loader sees the old file or the new one
        _load.cache_clear()
        return d / name
    raise RuntimeError("no writable directory for the oneDNN layer: " + "; ".join(errors))


#: OpenMP settings in force (unless already set) while oneDNN's OpenMP runtime (libgomp)
#: loads and reads them; the environment is restored right after, so child processes do not
#: inherit them. A planning call makes hundreds of short layer calls with a little XLA work between
#: them; by default libgomp's second thread sleeps in between and waking it costs more than a
#: small layer. Spinning up to 2e6 times (a few ms) before sleeping: pendulum_cem with
#: bfloat16 took 0.349 s per call against 0.480 s with GOMP_SPINCOUNT alone and 0.454 s
#: with neither; XLA's dot took 0.645 s (2-core AMD EPYC family 26 model 2, 2026-12-03).
OPENMP_ENV = MappingProxyType({"OMP_WAIT_POLICY": "active", "GOMP_SPINCOUNT": "2000000"})


@functools.cache
def _load() -> ctypes.CDLL | None:
    path = library_path()
    if path is None:
        return None
    # libgomp reads its settings once, when it loads (with the library): set them for that
    # moment only, so that processes this one starts (a torch peer, say) do not inherit them.
    saved = {k: os.environ.get(k) for k in OPENMP_ENV}
    for k, v in OPENMP_ENV.items():
        os.environ.setdefault(k, v)
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for fn in ("jaxmbrl_onednn_isa", "jaxmbrl_onednn_impl", "jaxmbrl_onednn_version"):
        getattr(lib, fn).restype = ctypes.c_char_p
    lib.jaxmbrl_onednn_impl.argtypes = [ctypes.c_int] + [ctypes.c_int64] * 3 + [ctypes.c_int] * 2
    jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(lib.JaxmbrlOnednnDense), platform="cpu")
    return lib


def available() -> bool:
    """Whether the custom call is built for this source, jaxlib and oneDNN, and loads."""
    return _load() is not None


def _lib() -> ctypes.CDLL:
    lib = _load()
    if lib is None:
        raise RuntimeError(
            "the oneDNN dense layer is not built: run `python -m jaxmbrl.onednn build` "
            "(needs the 'onednn' extra and a C++ compiler), or use dense_library='xla'"
        )
    return lib


def isa() -> str:
    """The instruction set oneDNN dispatches to here (``"avx512_core_amx"``, ...)."""
    return _lib().jaxmbrl_onednn_isa().decode()


def version() -> str:
    """oneDNN's version, e.g. ``"3.2.0"``."""
    return _lib().jaxmbrl_onednn_version().decode()


def implementation(dtype: str, rows: int, k: int, n: int, activation: str = "silu") -> str:
    """The kernel oneDNN picks for one layer (e.g. ``"brg:avx512_core_bf16"``).

    Args:
      dtype: the operand dtype, ``"float32"`` or ``"bfloat16"``.
      rows, k, n: ``[rows, k] @ [k, n]``.
      activation: a name of :data:`FUSED`, or ``"none"``.

    Returns:
      oneDNN's name for the kernel; ``"ref:..."`` for its slow reference kernel, and
      ``"unavailable: ..."`` where it has none (bfloat16 without AVX-512).
    """
    code = 0 if activation == "none" else FUSED[activation]
    name = cpu_dot.matmul_dtype_name(dtype)
    if name is None:
        raise ValueError(f"oneDNN dense: float32 or bfloat16 operands, not {dtype!r}")
    d = {"float32": 0, "bfloat16": 1}[name]
    return _lib().jaxmbrl_onednn_impl(d, rows, k, n, code, d).decode()


#: ``(vendor_id, cpu family, model)`` -> operand dtypes whose planning call was measured
#: faster through oneDNN than through XLA's dot on that kind of CPU (``bench_planning.py
#: --dense xla onednn``: both in one process, interleaved). AMD EPYC family 26 model 2
#: (AVX-512 with avx512_bf16, 2 cores), 2026-12-03: with bfloat16 operands oneDNN
#: (``brg:avx512_core_bf16``) planned seven of the eight mbrl-lib workloads 1.38-1.74x faster
#: than XLA's dot (pendulum_cem 0.414 against 0.708 s per call) and pendulum_icem, disturbed in
#: that run, 1.6-1.8x in two reruns; with float32 operands it was 0.60-0.94x as fast, so float32
#: keeps XLA's dot there. AMD EPYC family 25 model 1 (AVX2, 2 cores), 2026-12-07: oneDNN has
#: no bfloat16 matmul there, and with float32 operands (``gemm:jit:f32``) four workloads
#: took 1.01-1.20x XLA's time (medians of four runs), so neither dtype takes oneDNN.
MEASURED: Mapping[tuple[str, str, str], tuple[str, ...]] = MappingProxyType(
    {("AuthenticAMD", "26", "2"): ("bfloat16",), ("AuthenticAMD", "25", "1"): ()}
)

#: CPU flags (``/proc/cpuinfo``) -> operand dtypes oneDNN takes by default on such a CPU when
#: :data:`MEASURED` does not name the CPU. With AMX, oneDNN's bfloat16 matmul (torch 2.13's,
#: 2 cores of an Intel Xeon with AMX, 2026-11-27) ran the ensemble's layer shapes at 714-776
#: GFLOP/s against about 144 for XLA's bfloat16 dots in a whole planning call.
BY_FEATURE: Mapping[str, tuple[str, ...]] = MappingProxyType({"amx_bf16": ("bfloat16",)})


def preferred_dtypes(cpu: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The operand dtypes for which ``dense_library="auto"`` picks oneDNN on this CPU."""
    cpu = cpu_dot.cpu_fields() if cpu is None else cpu
    kind = cpu_dot.cpu_kind(cpu)
    if kind in MEASURED:
        return MEASURED[kind]
    flags = set(cpu.get("flags", "").split())
    return tuple(sorted({d for f, ds in BY_FEATURE.items() if f in flags for d in ds}))


def resolve(library: str, matmul_dtype: str) -> str:
    """``"xla"`` or ``"onednn"``: what a layer with these settings runs with in this process.

    Args:
      library: a name of :data:`LIBRARIES`.
      matmul_dtype: the layer's operand dtype, ``"float32"`` or ``"bfloat16"``.

    ``"auto"`` is :data:`ENV_VAR` when that is set, else ``"onednn"`` on the CPU backend where
    the layer is built, ``matmul_dtype`` is in :func:`preferred_dtypes` and oneDNN has an
    optimised kernel for it here (:func:`has_kernel`), else ``"xla"``.

    The custom call has no sharding rule: in a program sharded over several devices
    (``--xla_force_host_platform_device_count``) XLA gathers its operands and computes the
    whole layer on every device. The results are the same. On a 2-core AMD EPYC, with the rows
    split over two devices, that took 51 ms against XLA's 41-42 ms; the same call on one
    device's rows took 25 ms, and XLA's 60-73 ms. So ``"auto"`` keeps oneDNN with several
    devices; on a CPU, one device with oneDNN already keeps every core busy.

    Raises:
      ValueError: an unknown library name (also in :data:`ENV_VAR`).
      RuntimeError: ``"onednn"`` asked for where it is not built, on another backend, or
        for a dtype oneDNN has no matmul for on this CPU (:func:`runs`).
    """
    if library not in LIBRARIES:
        raise ValueError(f"unknown dense library {library!r}; choose from {LIBRARIES}")
    if library == "auto" and (env := os.environ.get(ENV_VAR, "").strip().lower()):
        if env not in LIBRARIES:
            raise ValueError(f"{ENV_VAR}={env!r}: choose from {LIBRARIES}")
        library = env
    if library == "xla":
        return "xla"
    if library == "onednn":
        if jax.default_backend() != "cpu":
            raise RuntimeError(
                f"the oneDNN dense layer runs on the CPU backend only, not "
                f"{jax.default_backend()!r}: use dense_library='auto' or 'xla'"
            )
        _check_runs(cpu_dot.matmul_dtype_name(matmul_dtype) or matmul_dtype)
        return "onednn"
    if jax.default_backend() != "cpu" or not available():
        return "xla"
    return "onednn" if fast_here(matmul_dtype) else "xla"


def fast_here(matmul_dtype: str) -> bool:
    """Whether oneDNN is the faster layer for ``matmul_dtype`` on this CPU: the dtype is in
    :func:`preferred_dtypes` and oneDNN has an optimised kernel for it (:func:`has_kernel`;
    needs the built layer). The CPU rule of ``"auto"`` in :func:`resolve`."""
    return matmul_dtype in preferred_dtypes() and has_kernel(matmul_dtype)


#: ``(rows, k, n)`` of the layer :func:`has_kernel`, :func:`runs` and :func:`info` ask oneDNN
#: about: a planning call's layer (mbrl-lib's 4 x 200 model, 1,400 rows per elite group).
PROBE_LAYER = (1400, 200, 200)


@functools.cache
def _probe(dtype: str) -> str:
    """:func:`implementation` of :data:`PROBE_LAYER` for ``dtype``, asked of oneDNN once."""
    return implementation(dtype, *PROBE_LAYER)


def has_kernel(dtype: str) -> bool:
    """Whether oneDNN has an optimised kernel for ``dtype`` operands on this CPU (not its
    reference kernel, and not none: bfloat16 needs AVX-512 in oneDNN 3.2)."""
    return not _probe(dtype).startswith(("unavailable", "ref"))


def runs(dtype: str) -> bool:
    """Whether oneDNN has any matmul kernel for ``dtype`` operands on this CPU (its reference
    kernel counts; oneDNN 3.2 has none for bfloat16 without AVX-512). Needs the built layer."""
    return not _probe(dtype).startswith("unavailable")


def _check_runs(dtype: str) -> None:
    """The built layer (:func:`_lib`'s error if not), and a clear error, before tracing,
    where oneDNN cannot run ``dtype`` operands here."""
    _lib()
    if not runs(dtype):
        raise RuntimeError(
            f"oneDNN {version()} has no {dtype} matmul on this CPU (its ISA: {isa()}; "
            f"bfloat16 needs AVX-512): use dense_library='auto' or 'xla', or float32 operands"
        )


def _call(x: Array, w: Array, b: Array, act: int, out_dtype) -> Array:
    _lib()
    out = jax.ShapeDtypeStruct((*x.shape[:-1], w.shape[-1]), out_dtype)
    call = jax.ffi.ffi_call(TARGET, out, vmap_method="broadcast_all")
    return call(x, w, b, activation=np.int64(act))


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _dense2d(x, w, b, act, out_dtype):
    return _call(x, w, b, act, out_dtype)


def _dense2d_jvp(act, out_dtype, primals, tangents):
    """Forward mode, and through JAX's transposition reverse mode too: the pre-activation
    ``z`` from oneDNN, its tangent ``dx @ w + x @ dw + db`` with XLA's dots (float32
    accumulation), then the activation's own JVP. A symbolic-zero tangent costs nothing.
    Higher derivatives (a Hessian-vector product) apply the rule again."""
    x, w, b = primals
    dx, dw, db = tangents
    z = _dense2d(x, w, b, 0, jnp.float32)  # itself, so higher derivatives use this rule too
    terms = (
        (dx, lambda: jnp.matmul(dx, w, preferred_element_type=jnp.float32)),
        (dw, lambda: jnp.matmul(x, dw, preferred_element_type=jnp.float32)),
        (db, lambda: jnp.broadcast_to(db.astype(jnp.float32), z.shape)),
    )
    nonzero = [term() for t, term in terms if not isinstance(t, SymbolicZero)]
    dz = functools.reduce(jnp.add, nonzero) if nonzero else jnp.zeros_like(z)
    fn = _ACTS[act]
    y, dy = (z, dz) if fn is None else jax.jvp(fn, (z,), (dz,))
    return y.astype(out_dtype), dy.astype(out_dtype)


_dense2d.defjvp(_dense2d_jvp, symbolic_zeros=True)


def dense(
    x: Array,
    kernel: Array,
    bias: Array,
    *,
    activation: str = "none",
    matmul_dtype: str = "float32",
    out_dtype=jnp.float32,
) -> Array:
    """``activation(x @ kernel + bias)`` through oneDNN (CPU only; see :func:`available`).

    Args:
      x: ``[..., K]`` float inputs (cast to ``matmul_dtype``).
      kernel: ``[K, N]`` float weights (cast to ``matmul_dtype``).
      bias: ``[N]`` float32.
      activation: a name of :data:`FUSED` (fused into the matmul) or ``"none"``.
      matmul_dtype: the operand dtype, ``"float32"`` or ``"bfloat16"``; accumulation and the
        bias and activation are float32.
      out_dtype: the result's dtype, float32 or bfloat16 (a bfloat16 result is rounded once,
        after the activation, as XLA rounds the next layer's bfloat16 operand).

    Returns:
      ``[..., N]`` of ``out_dtype``. Differentiable in forward and reverse mode (the
        derivatives run with XLA's dots); batches under ``vmap``.

    Raises:
      RuntimeError: the custom call is not built, or oneDNN has no matmul for
        ``matmul_dtype`` on this CPU (:func:`runs`: bfloat16 without AVX-512).
      ValueError: an activation it does not fuse, or other dtypes.
    """
    if activation != "none" and activation not in FUSED:
        raise ValueError(f"oneDNN fuses {sorted(FUSED)} or 'none', not {activation!r}")
    dt, out = cpu_dot.matmul_dtype_name(matmul_dtype), cpu_dot.matmul_dtype_name(out_dtype)
    if dt is None or out is None:
        raise ValueError("oneDNN dense: float32 or bfloat16 operands and result")
    if (
        kernel.ndim != 2
        or bias.shape != (kernel.shape[1],)
        or x.shape[-1] != kernel.shape[0]
        or kernel.shape[0] == 0
    ):
        raise ValueError(
            f"oneDNN dense: x [..., K], kernel [K, N], bias [N], K >= 1; got {x.shape}, "
            f"{kernel.shape}, {bias.shape}"
        )
    _check_runs(dt)
    lead = x.shape[:-1]
    x2 = x.reshape((-1, x.shape[-1])).astype(dt)
    code = 0 if activation == "none" else FUSED[activation]
    y = _dense2d(x2, kernel.astype(dt), bias.astype(jnp.float32), code, jnp.dtype(out))
    return y.reshape((*lead, kernel.shape[1]))


def info() -> dict:
    """What :func:`available` found, for a benchmark's machine record (JSON-ready)."""
    out: dict = {"available": available(), "preferred_dtypes": list(preferred_dtypes())}
    if out["available"]:
        out.update(
            version=version(),
            isa=isa(),
            kernels={d: _probe(d) for d in ("float32", "bfloat16")},
        )
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m jaxmbrl.onednn", description=__doc__)
    parser.add_argument("command", choices=("build", "info"))
    args = parser.parse_args(argv)
    if args.command == "build":
        print(f"built {build(verbose=True)}")
    print(json.dumps(info(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
