"""A/B: the imagined noise drawn per step (library) vs for the whole horizon up front.

Written against commit 96ec138, whose ``rollouts._score_chunk`` drew the noise per step: run it
from a checkout of that commit, from the repository's root, as
``python docs/measurements/2026-12-03/horizon_noise/ab.py OUT.json WORKLOADS DTYPES``
(comma-separated lists). After the change the library's own call is the ``horizon`` variant.
"""

import functools
import json
import pathlib
import statistics
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, "benchmarks")
sys.path.insert(0, "docs/measurements/2026-12-03/removal")
import ab
import bench_planning as bp

from jaxmbrl import rollouts as R


def step_h(ro, p, inp):
    a_t, bits_t, _, eps_t = inp
    if ro.config.propagation == "ts1":
        p = R._shuffle_slots(p, bits_t)
    s, alive = p.obs, p.alive
    a = jnp.broadcast_to(a_t[:, None], (s.shape[0], s.shape[1], *a_t.shape[1:]))
    mean, var = R._model_step(ro, s, a)
    out_dim = eps_t.shape[-1]
    sample = mean[..., :out_dim] + jnp.sqrt(var[..., :out_dim]) * eps_t
    s_next = s + sample[..., : ro.obs_dim]
    r = (
        R._per_item(ro.reward_fn)(s, a, s_next)
        if ro.reward_fn is not None
        else sample[..., ro.obs_dim]
    )
    ret = p.ret + jnp.where(alive, p.discount * r.astype(jnp.float32), 0.0)
    if ro.termination_fn is not None:
        s_next = jnp.where(alive[..., None], s_next, s)
        alive = alive & ~R._per_item(ro.termination_fn)(s, a, s_next).astype(bool)
    return R._Particles(
        obs=s_next, alive=alive, ret=ret, real=p.real, discount=p.discount * ro.config.gamma
    ), None


def score_h(ro, risk_lambda, keys, actions):
    config = ro.config
    assert not ro.expectation
    c, horizon = actions.shape[:2]
    real0 = jnp.broadcast_to(jnp.arange(ro.slots) < config.num_particles, (c, ro.slots))
    noise_keys, perm_keys = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
    bits = jax.vmap(lambda kk: jax.random.bits(kk, (horizon, ro.slots)))(perm_keys)
    perm_bits = jnp.moveaxis(bits, 1, 0)
    y = ro.obs_dim + (1 if ro.reward_fn is None else 0)
    eps = jax.vmap(lambda kk: jax.random.normal(kk, (horizon * ro.slots * y,)))(noise_keys)
    eps = jnp.moveaxis(eps.reshape(c, horizon, ro.slots, y), 1, 0)
    init = R._Particles(
        obs=jnp.broadcast_to(ro.obs, (c, ro.slots, ro.obs_dim)),
        alive=jnp.ones((c, ro.slots), bool),
        ret=jnp.zeros((c, ro.slots), jnp.float32),
        real=real0,
        discount=jnp.float32(1.0),
    )
    xs = (jnp.moveaxis(actions, 1, 0), perm_bits, jnp.arange(horizon, dtype=jnp.uint32), eps)
    final, _ = jax.lax.scan(functools.partial(step_h, ro), init, xs)
    return R.risk_score(
        config, final.ret, final.real, num_real=config.num_particles, risk_lambda=risk_lambda
    )


BASE = R._score_chunk


def main(path, names, dtypes, rounds=10, reps=2):
    out = {}
    for name in names:
        for dtype in dtypes:
            runners = {}
            for v in ("base", "horizon", "no_noise"):
                R._score_chunk = score_h if v == "horizon" else BASE
                ab.patch({"transition": ab.zero_noise_transition} if v == "no_noise" else {})
                runners[v] = bp.Runner(name, dtype, "ts1")
            R._score_chunk = BASE
            ab.patch({})
            for _ in range(rounds):
                for r in runners.values():
                    r.run(reps)
            med = {v: statistics.median(r.times) for v, r in runners.items()}
            out[f"{name}/{dtype}"] = {v: m / med["base"] for v, m in med.items()} | {
                "base_s": med["base"]
            }
            print(
                name,
                dtype,
                {v: round(m / med["base"], 3) for v, m in med.items()},
                round(med["base"], 4),
                flush=True,
            )
    pathlib.Path(path).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","))
