"""Five members x four 200-wide float32 layers on 1400 rows each (pendulum_cem's grouped TS1
shapes), 20 steps in a scan: the layer with bias and SiLU, with bias only, and the dot alone.

Run with XLA's own dot, as the library does on the AMD EPYC family 26 model 2:
``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python layer_microbench.py``.
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

R, M, L = 1400, 5, 4
x0 = jax.random.normal(jax.random.key(0), (M, R, 200), jnp.float32)
W = jax.random.normal(jax.random.key(1), (M, L, 200, 200), jnp.float32) / 14
b = jax.random.normal(jax.random.key(2), (M, L, 200), jnp.float32) * 0.1
variants = {
    "silu+bias": lambda y, W, b: jax.nn.silu(y @ W + b),
    "bias": lambda y, W, b: y @ W + b,
    "dot only": lambda y, W, b: y @ W,
}


def mk(layer):
    @jax.jit
    def f(x):
        def body(h, _):
            return jnp.stack(
                [
                    functools.reduce(lambda y, i: layer(y, W[m, i], b[m, i]), range(L), h[m])
                    for m in range(M)
                ]
            ), None

        return jax.lax.scan(body, x, None, length=20)[0]

    return f


js = {k: mk(a) for k, a in variants.items()}
for f in js.values():
    f(x0).block_until_ready()
res = {k: [] for k in js}
for _ in range(15):
    for k, f in js.items():
        t = time.perf_counter()
        f(x0).block_until_ready()
        res[k].append(time.perf_counter() - t)
for k, v in res.items():
    print(f"{k:10s} median {np.median(v) * 1e3 / 20:.3f} ms/step  min {min(v) * 1e3 / 20:.3f}")
