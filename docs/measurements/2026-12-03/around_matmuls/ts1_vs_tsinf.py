"""TS1's per-step particle shuffle, measured by its absence: pendulum_cem_pop2000 in bfloat16
with TS1 against TS-infinity (no shuffle), interleaved, 3 x 2 calls each.

Run from the repository root: ``python docs/measurements/2026-12-03/around_matmuls/ts1_vs_tsinf.py``
"""

import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[4] / "benchmarks"))
import bench_planning as bp

runners = {p: bp.Runner("pendulum_cem_pop2000", "bfloat16", p) for p in ("ts1", "tsinf")}
for _ in range(3):
    for r in runners.values():
        r.run(2)
for p, r in runners.items():
    print(p, round(statistics.median(r.times), 3), [round(t, 3) for t in r.times])
