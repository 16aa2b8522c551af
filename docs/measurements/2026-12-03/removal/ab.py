"""What each part around the matmuls costs, measured by taking it out: one planning call with
the part removed (or made trivial) against the library's call, interleaved in one process.

The profiler's per-op thunk times (``benchmarks/trace_planning_call.py``) overlap on the two
cores and do not add up to the call's time, so they rank operations but do not say what
removing one would save. These variants do (their plans are wrong; only their time matters):

* ``relu``: the hidden layers' SiLU replaced by ReLU (the cheapest activation; float32 only,
  where XLA computes the activation outside its dot; oneDNN fuses it in bfloat16);
* ``no_noise``: the imagined step's Gaussian noise (``fold_in`` and a Threefry normal draw
  per candidate and step) replaced by zeros;
* ``no_shuffle``: TS1's per-step permutation of each candidate's particles left out.

Run: ``python docs/measurements/2026-12-03/removal/ab.py OUT.json [WORKLOAD ...]``.

It patches the library's private functions as they were at commit 96ec138 (the noise drawn per
step, ``_imagined_transition(ro, noise_keys, t, s, a)``); run it from a checkout of that commit.
The library now draws a whole horizon's noise up front (``../horizon_noise/``).
"""

import json
import pathlib
import statistics
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[4] / "benchmarks"))
import bench_planning as bp
from common import machine

from jaxmbrl import rollouts as R
from jaxmbrl.models import ensemble as E

BASE = {"transition": R._imagined_transition, "shuffle": R._shuffle_slots,
        "silu": E.ACTIVATIONS["silu"]}  # fmt: skip


def zero_noise_transition(ro, noise_keys, t, s, a):
    """``_imagined_transition`` with ``eps = 0`` (the mean plus ``sqrt(var) * 0``)."""
    mean, var = R._model_step(ro, s, a)
    out_dim = mean.shape[-1] if ro.reward_fn is None else ro.obs_dim
    sample = mean[..., :out_dim] + jnp.sqrt(var[..., :out_dim]) * jnp.zeros_like(var[..., :out_dim])
    r_model = sample[..., ro.obs_dim] if ro.reward_fn is None else None
    return s + sample[..., : ro.obs_dim], r_model


VARIANTS = {
    "base": {},
    "relu": {"silu": jax.nn.relu},
    "no_noise": {"transition": zero_noise_transition},
    "no_shuffle": {"shuffle": lambda p, bits_t: p},
}


def patch(over):
    parts = {**BASE, **over}
    R._imagined_transition, R._shuffle_slots = parts["transition"], parts["shuffle"]
    E.ACTIVATIONS["silu"] = parts["silu"]


def main(path, names, rounds=8, reps=2):
    out = {"machine": machine(), "rounds": rounds, "reps": reps, "results": {}}
    for name in names:
        for dtype in ("float32", "bfloat16"):
            runners = {}
            for variant, over in VARIANTS.items():
                if variant == "relu" and dtype != "float32":
                    continue
                patch(over)
                runners[variant] = bp.Runner(name, dtype, "ts1")
            patch({})
            for _ in range(rounds):
                for r in runners.values():
                    r.run(reps)
            med = {v: statistics.median(r.times) for v, r in runners.items()}
            row = {v: {"s_per_call": m, "over_base": m / med["base"]} for v, m in med.items()}
            out["results"][f"{name}/{dtype}"] = row
            print(f"{name} [{dtype}]: " + ", ".join(
                f"{v} {m:.4f} s ({m / med['base']:.3f})" for v, m in med.items()), flush=True)  # fmt: skip
            pathlib.Path(path).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or ["pendulum_cem", "pendulum_mppi", "inv_pendulum_cem"])
