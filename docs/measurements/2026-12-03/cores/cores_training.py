"""CPU time / wall time of compiled training calls (5 epochs on 10,000 Pendulum transitions):
how many cores are busy, for mbrl-lib's model and PETS's default one.

Run: JAXMBRL_CPU_DOT=xla|ynnpack python docs/measurements/2026-12-03/cores/cores_training.py
"""

import pathlib
import resource
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[4] / "benchmarks"))

import bench_training as bt
import jax
import jax.numpy as jnp

from jaxmbrl import cpu_dot, models


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


CONFIGS = {
    "mbrl-lib model 7x4x200": models.EnsembleConfig(obs_dim=3, action_dim=1),
    "PETS default 5x2x64": models.EnsembleConfig(
        obs_dim=3, action_dim=1, num_members=5, num_elites=3, hidden_sizes=(64, 64)
    ),
}
data = tuple(jnp.asarray(x) for x in bt.pendulum_transitions(jax.random.key(0), 10000)[:3])
for label, config in CONFIGS.items():
    tc = models.TrainConfig(max_epochs=5, patience=6, validation_ratio=0.2, batch_size=256)
    state, _ = models.train(config, tc, jax.random.key(1), None, *data)
    jax.block_until_ready(models.train(config, tc, jax.random.key(2), state, *data))
    c0, t0 = cpu(), time.perf_counter()
    bt.time_jax(config, tc, state, data, 3, seed=10)
    c1, t1 = cpu(), time.perf_counter()
    busy = (c1 - c0) / (t1 - t0)
    print(f"{cpu_dot.dot_library()} {label}: wall {t1 - t0:.2f} s, cores busy {busy:.2f}")
