"""CPU time / wall time of repeated planning calls and training epochs: how many cores are busy."""

import resource, sys, time, pathlib

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[4] / "benchmarks"))
import jax
import bench_planning as bp
from jaxmbrl import cpu_dot


def cpu():
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
