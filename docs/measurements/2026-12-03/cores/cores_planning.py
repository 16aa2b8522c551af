"""CPU time / wall time of repeated compiled planning calls: how many cores are busy.

Run: JAXMBRL_CPU_DOT=xla|ynnpack python docs/measurements/2026-12-03/cores/cores_planning.py
"""

import pathlib
import resource
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[4] / "benchmarks"))

import bench_planning as bp

from jaxmbrl import cpu_dot


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


print("library", cpu_dot.dot_library())
for name in ("pendulum_cem", "pendulum_cem_pop50"):
    r = bp.Runner(name, "float32", "ts1")
    r.run(2, record=False)
    c0, t0 = cpu(), time.perf_counter()
    r.run(6)
    c1, t1 = cpu(), time.perf_counter()
    print(
        f"{name}: wall {t1 - t0:.2f} s, cpu {c1 - c0:.2f} s, cores busy {(c1 - c0) / (t1 - t0):.2f}"
    )
