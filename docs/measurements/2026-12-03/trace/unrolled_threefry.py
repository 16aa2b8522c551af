"""An unrolled Threefry-2x32 as a JAX PRNG implementation: the same numbers as
``jax.random``'s default keys, without XLA:CPU's rolled loop (not adopted; see README.md).

jax 0.10.2 lowers ``threefry2x32`` on CPU as a 5-iteration ``while`` loop (for compile time).
:data:`IMPL` computes the same hash with the rounds unrolled, and ``split``, ``fold_in`` and
``random_bits`` as jax's partitionable Threefry does (``jax_threefry_partitionable``, the
default; seeding is jax's own), so ``jax.random.*(wrap(key), ...)`` equals
``jax.random.*(key, ...)`` bit for bit.

Run: ``python docs/measurements/2026-12-03/trace/unrolled_threefry.py`` (checks the equality,
then times the draws).
"""

import statistics
import time

import jax
import jax.extend.random as jxr
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x, d):
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def hash2x32(k1, k2, x1, x2):
    """Threefry-2x32, 20 rounds, unrolled (the schedule of jax's ``_threefry2x32_lowering``)."""
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = _rotl(x2, r) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _counts(shape):
    n = int(np.prod(shape)) if shape else 1
    if n >= 2**32:
        raise NotImplementedError("more than 2**32 draws")
    return jnp.zeros(shape, np.uint32), lax.iota(np.uint32, n).reshape(shape)


def _split(key, shape):
    b1, b2 = hash2x32(key[0], key[1], *_counts(shape))
    return jnp.stack([b1, b2], axis=b1.ndim)


def _fold_in(key, data):
    d = jnp.asarray(data, np.uint32)
    y1, y2 = hash2x32(key[0], key[1], jnp.zeros((1,), np.uint32), d[None])
    return jnp.concatenate([y1, y2])


def _random_bits(key, bit_width, shape):
    b1, b2 = hash2x32(key[0], key[1], *_counts(shape))
    if bit_width == 64:
        return (b1.astype(np.uint64) << np.uint64(32)) | b2.astype(np.uint64)
    b = b1 ^ b2
    return b if bit_width == 32 else b.astype({8: np.uint8, 16: np.uint16}[bit_width])


IMPL = jxr.define_prng_impl(
    key_shape=(2,), seed=jxr.threefry_prng_impl.seed, split=_split,
    random_bits=_random_bits, fold_in=_fold_in, name="threefry2x32_unrolled", tag="fry_u",
)  # fmt: skip


def wrap(keys):
    """Default (Threefry) keys as keys of :data:`IMPL`, the same bits."""
    return jax.random.wrap_key_data(jax.random.key_data(keys), impl=IMPL)


def _median_ms(f, *args, reps=20):
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main():
    key = jax.random.key(42)
    draws = {
        "normal": lambda k, s: jax.random.normal(k, s),
        "uniform": lambda k, s: jax.random.uniform(k, s),
        "bits": lambda k, s: jax.random.bits(k, s),
        "truncated_normal": lambda k, s: jax.random.truncated_normal(k, -2.0, 2.0, s),
    }
    for shape in [(), (3,), (5, 7), (2, 3, 4)]:
        for name, draw in draws.items():
            a, b = draw(key, shape), draw(wrap(key), shape)
            assert (np.asarray(a) == np.asarray(b)).all(), (name, shape)
    assert (jax.random.key_data(jax.random.key(42, impl=IMPL)) == jax.random.key_data(key)).all()
    keys = jax.random.split(key, 350)
    assert (
        jax.random.key_data(keys) == jax.random.key_data(jax.random.split(wrap(key), 350))
    ).all()
    per_candidate = jax.jit(
        lambda ks, t: jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, t), (20, 3)))(ks)
    )
    t = jnp.uint32(3)
    assert (per_candidate(keys, t) == per_candidate(wrap(keys), t)).all()
    print("equal to jax.random's draws")
    n = 350 * 20 * 3 * 75  # one mbrl-lib pendulum_cem call's noise draws
    bits = jax.jit(lambda k: jax.random.bits(k, (n,)))
    normal = jax.jit(lambda k: jax.random.normal(k, (n,)))
    for name, f in (
        ("bits", bits),
        ("normal", normal),
        ("vmapped fold_in + normal", per_candidate),
    ):
        args = (keys, t) if f is per_candidate else (key,)
        wrapped = (wrap(keys), t) if f is per_candidate else (wrap(key),)
        print(
            f"{name}: jax {_median_ms(f, *args):.2f} ms, unrolled {_median_ms(f, *wrapped):.2f} ms"
        )


if __name__ == "__main__":
    main()
