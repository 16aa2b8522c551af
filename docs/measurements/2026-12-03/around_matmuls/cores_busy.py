"""How many of the CPU's cores a compiled call keeps busy: process CPU time / wall time.

Training: 5 epochs of mbrl-lib's model (7 x 4 x 200 SiLU, Gaussian) on 4,000 rows, batch
256. Planning: two ``bench_planning.py`` workloads in both precisions (``dense_library``
"auto"). A spinning OpenMP thread (oneDNN's, ``OMP_WAIT_POLICY=active``) counts as busy.

Run from the repository root: ``python docs/measurements/2026-12-03/around_matmuls/cores_busy.py``
"""

import pathlib
import resource
import sys
import time

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[4] / "benchmarks"))
import bench_planning as bp

from jaxmbrl.models import ensemble as ens
from jaxmbrl.models import training


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(name: str, fn, reps: int) -> None:
    fn()  # compile and warm up outside the timer
    wall, cpu = time.perf_counter(), cpu_s()
    for _ in range(reps):
        fn()
    wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
    print(f"{name}: {wall / reps:.3f} s/call, cores busy {cpu / wall:.2f}", flush=True)


cfg = ens.EnsembleConfig(obs_dim=3, action_dim=1)
tc = training.TrainConfig(
    learning_rate=7.5e-4, weight_decay=3e-5, batch_size=256, max_epochs=5, patience=100
)
key = jax.random.key(0)
obs, act = jax.random.normal(key, (4000, 3)), jax.random.normal(key, (4000, 1))
train = jax.jit(lambda k: training.train(cfg, tc, k, None, obs, act, obs + 0.1, act[:, 0])[0])
measure("train 5 epochs, 4000 rows", lambda: jax.block_until_ready(train(key).params), 3)
for workload in ("pendulum_cem", "pendulum_cem_pop2000"):
    for dtype in ("float32", "bfloat16"):
        r = bp.Runner(workload, dtype, "ts1")
        name = f"plan {workload} {dtype} ({r.info['dense_library']})"
        measure(name, lambda r=r: jax.block_until_ready(r._call()), 4)
