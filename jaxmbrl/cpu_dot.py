"""Which library XLA:CPU runs the model's dense layers with, and how to choose it.

jaxlib 0.10.2's XLA:CPU hands a dot (with the converts of its operands) to **YNNPACK** by
default: the optimised HLO shows it as a fusion of kind ``__ynn_fusion``. With
``--xla_cpu_experimental_ynn_fusion_type=`` (an empty list) XLA's own dot emitter (Eigen)
runs it instead. The oneDNN options that the same jaxlib lists
(``xla_cpu_experimental_onednn_fusion_type``, ``xla_cpu_use_onednn``) created no oneDNN
fusion on the CPUs tried here: an AMD EPYC without AVX-512, on which the HLO kept XLA's dot.

Neither library is faster everywhere, so the choice is measured per kind of CPU (the table in
the README, from ``benchmarks/bench_planning.py`` under each library on the same machine) and
reported with every result: :func:`dot_library` reads the optimised HLO of a small compiled
dot, so it tells what runs, not what was asked for.

Choosing it:

* for one program: ``jax.jit(f, compiler_options=compiler_options("xla"))``;
* for a whole process: :func:`use` before JAX starts its CPU backend, or
  ``JAXMBRL_CPU_DOT=ynnpack|xla|auto`` in the environment, which ``import jaxmbrl`` applies
  (``auto``: :func:`preferred` for this CPU). JAX starts its backend at the first array it
  makes, and some imports (gymnax) make arrays, so the environment variable is the way for a
  program that imports them first.

The library does not change what is computed, only the order of float32 sums inside a dot:
the same layer agrees to about 1e-6 relative between the two (a test holds it).
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

#: The environment variable ``import jaxmbrl`` reads: a name of :data:`LIBRARIES`, or
#: ``"auto"`` (the default) for :func:`preferred`.
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

    Returns:
      ``"ynnpack"``, ``"xnnpack"`` or ``"onednn"`` when XLA:CPU hands the dot to that
      library, ``"xla"`` when XLA's own emitter runs it, and the backend's name
      (``"gpu"``, ``"tpu"``) on other backends.
    """
    return _dot_library(str(dtype), tuple(sorted((options or {}).items())))


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


def _cpu_fields() -> dict[str, str]:
    """``vendor_id`` and ``flags`` of the first CPU in ``/proc/cpuinfo`` (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read(1 << 16)
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def preferred(cpu: Mapping[str, str] | None = None) -> str:
    """The library measured faster for the ensemble's planning call on this kind of CPU.

    Measured (``benchmarks/bench_planning.py`` under each library, the same machine, one after
    the other) on an AMD EPYC without AVX-512 (family 25, model 1): XLA's own dot. Every CPU
    kind not measured keeps XLA's default, YNNPACK.

    Args:
      cpu: ``/proc/cpuinfo`` fields ``vendor_id`` and ``flags`` (default: this machine's).

    Returns:
      A name of :data:`LIBRARIES`.
    """
    cpu = _cpu_fields() if cpu is None else cpu
    flags = set(cpu.get("flags", "").split())
    if cpu.get("vendor_id") == "AuthenticAMD" and flags and "avx512f" not in flags:
        return "xla"
    return "ynnpack"


def _backends_started() -> bool:
    from jax._src import xla_bridge  # no public way to ask without starting them

    return xla_bridge.backends_are_initialized()


def use(library: str, *, warn: bool = True) -> bool:
    """Select ``library`` for the whole process through ``XLA_FLAGS``, before JAX starts.

    An ``XLA_FLAGS`` that already names the option wins (it is the user's own choice).

    Args:
      library: a name of :data:`LIBRARIES`, or ``"auto"`` for :func:`preferred`.
      warn: warn when JAX's backend has already started and the choice cannot take effect.

    Returns:
      Whether ``XLA_FLAGS`` was changed.

    Raises:
      ValueError: an unknown library name.
    """
    library = preferred() if library == "auto" else library
    _check(library)
    flags = os.environ.get("XLA_FLAGS", "")
    if YNN_OPTION in flags:
        return False
    if _backends_started():
        if warn and library != "ynnpack":
            warnings.warn(
                f"JAX's backend already started: the CPU dot library stays XLA's default "
                f"instead of {library!r}; set {ENV_VAR} or XLA_FLAGS before JAX makes an array",
                stacklevel=2,
            )
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {xla_flag(library)}".strip()
    return True


__all__ = [
    "ENV_VAR",
    "LIBRARIES",
    "YNN_DEFAULT",
    "YNN_OPTION",
    "compiler_options",
    "dot_library",
    "preferred",
    "use",
    "xla_flag",
]
