"""Which library XLA:CPU runs the model's dense layers with, and how to choose it.

jaxlib 0.10.2's XLA:CPU hands a dot (with the converts of its operands) to **YNNPACK** by
default: the optimised HLO shows it as a fusion of kind ``__ynn_fusion``. With
``--xla_cpu_experimental_ynn_fusion_type=`` (an empty list) XLA's own dot emitter (Eigen)
runs it instead. The oneDNN options that the same jaxlib lists
(``xla_cpu_experimental_onednn_fusion_type``, ``xla_cpu_use_onednn``,
``xla_cpu_experimental_onednn_custom_call``) created no oneDNN fusion or call on the CPUs
tried here (AMD EPYC with AVX2 only, and with AVX-512 and avx512_bf16): the HLO kept XLA's dot.

Which library is faster depends on the CPU, so the choice is measured per kind of CPU
(:data:`MEASURED`; ``benchmarks/bench_planning.py`` and ``benchmarks/bench_training.py``
under each library, alternating on the same machine) and reported with every result:
:func:`dot_library` reads the optimised HLO of a small compiled dot, so it tells what runs,
not what was asked for.

Choosing it:

* for one program: ``jax.jit(f, compiler_options=compiler_options("xla"))``;
* for a whole process: :func:`use` before JAX starts its CPU backend, or
  ``JAXMBRL_CPU_DOT=ynnpack|ynnpack_dot|xla|auto`` in the environment, which
  ``import jaxmbrl`` applies (default ``auto``: :func:`preferred` for this CPU). JAX starts
  its backend at the first array it makes, and some imports (gymnax) make arrays: import
  jaxmbrl before them, or name the option in ``XLA_FLAGS`` (:func:`xla_flag`), which always
  wins.

The library does not change what is computed, only the order of the sums inside a dot: the
ensemble's predicted means differ by 6e-7 of their largest magnitude in float32 and by 5e-3
with bfloat16 operands (4 x 200 SiLU, 7 members, 512 rows; a test holds 1e-5 and 2e-2).
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections.abc import Mapping
from types import MappingProxyType

import jax
import jax.numpy as jnp

#: The XLA option that lists the kinds of op XLA:CPU hands to YNNPACK.
YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"

#: jaxlib 0.10.2's default for :data:`YNN_OPTION`: dots, elementwise ops and reductions
#: (a dense layer's dot, its SiLU and a sum become one YNNPACK fusion).
YNN_DEFAULT = "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_ELTWISE,LIBRARY_FUSION_TYPE_REDUCE"

#: Library name -> the compiler options that select it. ``"ynnpack"`` spells out XLA's default
#: (the optimised HLO is the same as with no option); ``"ynnpack_dot"`` hands YNNPACK the dots
#: only and leaves the elementwise ops to XLA; ``"xla"`` is XLA's own dot emitter (Eigen).
LIBRARIES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "ynnpack": MappingProxyType({YNN_OPTION: YNN_DEFAULT}),
        "ynnpack_dot": MappingProxyType({YNN_OPTION: "LIBRARY_FUSION_TYPE_DOT"}),
        "xla": MappingProxyType({YNN_OPTION: ""}),
    }
)

#: The environment variable ``import jaxmbrl`` reads: a name of :data:`LIBRARIES`,
#: ``"auto"`` (the default) for :func:`preferred`, or ``"off"`` to leave ``XLA_FLAGS`` alone.
ENV_VAR = "JAXMBRL_CPU_DOT"

# Fusion kinds in the optimised HLO -> the library that runs them.
_FUSION_KINDS = {"__ynn_fusion": "ynnpack", "__xnn_fusion": "xnnpack", "__onednn_fusion": "onednn"}


def _check(library: str) -> None:
    if library not in LIBRARIES:
        raise ValueError(f"unknown CPU dot library {library!r}; choose from {sorted(LIBRARIES)}")


def compiler_options(library: str) -> dict[str, str]:
    """The ``jax.jit(..., compiler_options=...)`` that select ``library`` for one program.

    Args:
      library: a name of :data:`LIBRARIES` (``"ynnpack"``: XLA's default; ``"xla"``: XLA's
        own dot emitter).

    Returns:
      A new dict of XLA debug options.

    Raises:
      ValueError: an unknown library name.
    """
    _check(library)
    return dict(LIBRARIES[library])


def xla_flag(library: str) -> str:
    """``library`` as an ``XLA_FLAGS`` entry, e.g. ``"--xla_cpu_experimental_ynn_fusion_type="``."""
    return " ".join(f"--{k}={v}" for k, v in compiler_options(library).items())


def dot_library(dtype: str = "float32", *, options: Mapping[str, str] | None = None) -> str:
    """The library that runs a dot of the ensemble's layer shape in this process.

    Compiles ``x @ w`` for ``x: [E, R, D]`` and ``w: [E, D, D]`` (5 x 256 x 64 @ 5 x 64 x 64,
    operands cast to ``dtype``, float32 result) and reads the fusion kinds of the optimised
    HLO. About 0.1 s the first time per argument set (then cached).

    Args:
      dtype: the operands' dtype, ``"float32"`` or ``"bfloat16"``.
      options: compiler options to compile it with (default: the process's flags only).

    Raises:
      ValueError: another dtype.

    Returns:
      ``"ynnpack"``, ``"xnnpack"`` or ``"onednn"`` when XLA:CPU hands the dot to that
      library, ``"xla"`` when XLA's own emitter runs it, and the backend's name
      (``"gpu"``, ``"tpu"``) on other backends.
    """
    name = matmul_dtype_name(dtype)
    if name is None:
        raise ValueError(f"dot_library dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    return _dot_library(name, tuple(sorted((options or {}).items())))


def matmul_dtype_name(dtype) -> str | None:
    """``"float32"`` or ``"bfloat16"`` for any spelling of those two matmul operand dtypes
    (a name, ``jnp.bfloat16``, a NumPy dtype), else ``None``."""
    try:
        name = jnp.dtype(dtype).name
    except TypeError:
        return None
    return name if name in ("float32", "bfloat16") else None


@functools.cache
def _dot_library(dtype: str, options: tuple[tuple[str, str], ...]) -> str:
    if jax.default_backend() != "cpu":
        return jax.default_backend()
    x = jax.ShapeDtypeStruct((5, 256, 64), jnp.float32)
    w = jax.ShapeDtypeStruct((5, 64, 64), jnp.float32)

    def layer(x, w):
        return jnp.einsum(
            "erd,edf->erf", x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32
        )

    text = jax.jit(layer, compiler_options=dict(options)).lower(x, w).compile().as_text()
    kinds = set(re.findall(r'"kind":"(__\w+)"', text))
    found = sorted(_FUSION_KINDS[k] for k in kinds if k in _FUSION_KINDS)
    return found[0] if found else "xla"


def cpu_fields() -> dict[str, str]:
    """The fields of the first CPU in ``/proc/cpuinfo`` (``vendor_id``, ``cpu family``,
    ``model``, ``flags``, ...; empty where there is none). Read once per process."""
    return dict(_cpu_fields())


@functools.cache
def _cpu_fields() -> MappingProxyType:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read(1 << 16)
    except OSError:
        return MappingProxyType({})
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return MappingProxyType(fields)


def cpu_kind(cpu: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """``(vendor_id, cpu family, model)``: the key of the per-CPU tables (:data:`MEASURED`,
    :data:`jaxmbrl.onednn.MEASURED`), from ``cpu`` (``/proc/cpuinfo`` fields; default: this
    machine's); ``""`` for a field it lacks."""
    cpu = cpu_fields() if cpu is None else cpu
    return (cpu.get("vendor_id", ""), cpu.get("cpu family", ""), cpu.get("model", ""))


#: ``(vendor_id, cpu family, model)`` of ``/proc/cpuinfo`` -> the library measured faster there
#: for the ensemble's planning call and training (``benchmarks/bench_planning.py`` and
#: ``benchmarks/bench_training.py`` under each library, one after the other on one machine).
#: AMD EPYC family 26 model 2 (AVX-512, avx512_bf16, 2 cores), 2026-12-03, two alternating
#: runs each: XLA's dot was faster on all six planning workloads in both dtypes (ynnpack /
#: xla 1.03-1.25 in seconds per call) and trained 1.7x faster (31,500 against 17,800
#: samples/s). AMD EPYC family 25 model 1 (AVX2, no AVX-512, 2 cores), 2026-12-07, two
#: alternating runs each: XLA's dot planned four float32 workloads faster (ynnpack / xla
#: 1.02-1.38 on the medians) and trained 1.4x faster (8,954-12,572 against 7,471-8,176
#: samples/s), although YNNPACK ran a 4096^2 float32 matmul faster (105 against 70 GFLOP/s).
MEASURED: Mapping[tuple[str, str, str], str] = MappingProxyType(
    {("AuthenticAMD", "26", "2"): "xla", ("AuthenticAMD", "25", "1"): "xla"}
)


def preferred(cpu: Mapping[str, str] | None = None) -> str:
    """The library measured faster for the model's dense layers on this kind of CPU.

    Args:
      cpu: ``/proc/cpuinfo`` fields ``vendor_id``, ``cpu family`` and ``model`` (default:
        this machine's).

    Returns:
      A name of :data:`LIBRARIES`: the :data:`MEASURED` one for this CPU kind, else
      ``"ynnpack"`` (XLA's default).
    """
    return MEASURED.get(cpu_kind(cpu), "ynnpack")


def _backends_started() -> bool:
    try:  # no public way to ask without starting them
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a jax without it: assume started, change nothing
        return True


def _flag_value(flags: str) -> str | None:
    """The value :data:`YNN_OPTION` has in ``flags`` (an ``XLA_FLAGS`` string), if named."""
    found = re.findall(rf"--{YNN_OPTION}=(\S*)", flags)
    return found[-1] if found else None


#: The jaxlib versions whose XLA:CPU is known to take :data:`YNN_OPTION` and its values (XLA
#: aborts the process on a flag it does not know, so no other version gets it).
CHECKED_JAXLIB = ("0.10.",)


def _jaxlib_checked() -> bool:
    return _jaxlib_version().startswith(CHECKED_JAXLIB)


def _running(library: str) -> str:
    """What :func:`dot_library` reports when ``library`` runs (``ynnpack_dot`` is YNNPACK)."""
    return "ynnpack" if library.startswith("ynnpack") else library


def use(library: str, *, warn: bool = True) -> bool:
    """Select ``library`` for the whole process through ``XLA_FLAGS``, before JAX starts.

    ``import jaxmbrl`` calls it with ``$JAXMBRL_CPU_DOT`` (default ``"auto"``). Changing
    ``XLA_FLAGS`` affects all JAX code in the process and the processes it starts, which
    inherit the variable. It changes nothing:

    * for ``"off"``, or for ``"auto"`` when :func:`preferred` is XLA's default;
    * when ``XLA_FLAGS`` already names :data:`YNN_OPTION` (the user's own choice, or one
      inherited from a parent process, wins);
    * when JAX's backend has already started (it reads the options once, at its start);
    * on a jaxlib outside :data:`CHECKED_JAXLIB`.

    Args:
      library: a name of :data:`LIBRARIES`, ``"auto"`` for :func:`preferred`, or ``"off"``.
      warn: warn when the choice cannot take effect and something else runs.

    Returns:
      Whether ``XLA_FLAGS`` was changed.

    Raises:
      ValueError: an unknown library name.
    """
    if library == "off":
        return False
    auto = library == "auto"
    library = preferred() if auto else library
    _check(library)
    if auto and library == "ynnpack":
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    if (current := _flag_value(flags)) is not None:
        if warn and not auto and current != LIBRARIES[library][YNN_OPTION]:
            warnings.warn(
                f"XLA_FLAGS already sets --{YNN_OPTION}={current}, which wins over the CPU "
                f"dot library {library!r}",
                stacklevel=2,
            )
        return False
    if not _jaxlib_checked():
        problem = f"jaxlib {_jaxlib_version()} is not one whose XLA:CPU takes --{YNN_OPTION}"
    elif not _backends_started():
        os.environ["XLA_FLAGS"] = f"{flags} {xla_flag(library)}".strip()
        return True
    elif (running := dot_library()) == _running(library):
        return False
    else:
        problem = (
            f"JAX's backend had started before the CPU dot library could be chosen: "
            f"{running!r} runs. Set {ENV_VAR}={library} or XLA_FLAGS={xla_flag(library)} "
            f"before JAX makes its first array (importing gymnax makes one: import jaxmbrl first)"
        )
    if warn:
        warnings.warn(f"CPU dot library {library!r} not applied: {problem}", stacklevel=2)
    return False


def _jaxlib_version() -> str:
    import jaxlib

    return jaxlib.__version__


__all__ = [
    "CHECKED_JAXLIB",
    "ENV_VAR",
    "LIBRARIES",
    "MEASURED",
    "YNN_DEFAULT",
    "YNN_OPTION",
    "compiler_options",
    "cpu_fields",
    "cpu_kind",
    "dot_library",
    "matmul_dtype_name",
    "preferred",
    "use",
    "xla_flag",
]
