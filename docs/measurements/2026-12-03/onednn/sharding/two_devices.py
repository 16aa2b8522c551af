"""The oneDNN layer on a 2-device CPU mesh: the ensemble's grouped prediction (mbrl-lib's
model, bfloat16 operands, 5 groups x 7,000 rows) with its rows unsharded and split over the
two devices, XLA's dot against oneDNN; whether the compiled program gathers the operands.

Run: ``python docs/measurements/2026-12-03/onednn/sharding/two_devices.py``
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
)

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmbrl.models import ensemble as ens

mesh = Mesh(np.array(jax.devices()), ("d",))
rows = NamedSharding(mesh, P(None, "d"))
obs = jax.random.normal(jax.random.key(1), (5, 7000, 3))
act = jnp.ones((5, 7000, 1))
for lib in ("xla", "onednn"):
    cfg = ens.EnsembleConfig(obs_dim=3, action_dim=1, matmul_dtype="bfloat16", dense_library=lib)
    state = ens.init(cfg, jax.random.key(0))
    f = jax.jit(lambda o, a, cfg=cfg, state=state: ens.predict_grouped(cfg, state, o, a)[0])
    ref = f(obs, act)
    so, sa = jax.device_put(obs, rows), jax.device_put(act, rows)
    y = f(so, sa)
    gathers = f.lower(so, sa).compile().as_text().count("all-gather")
    diff = float(jnp.max(jnp.abs(y - ref)))
    print(f"{lib}: output {y.sharding.spec}, all-gathers {gathers}, max diff {diff}")
    for name, args in (("unsharded", (obs, act)), ("rows split", (so, sa))):
        jax.block_until_ready(f(*args))
        times = []
        for _ in range(10):
            t = time.perf_counter()
            jax.block_until_ready(f(*args))
            times.append(time.perf_counter() - t)
        print(f"  {lib} {name}: {1e3 * statistics.median(times):.1f} ms (median of 10)")
