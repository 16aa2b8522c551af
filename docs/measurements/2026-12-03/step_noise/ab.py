"""A/B of the imagined step's noise draw, interleaved in one process: the library's fused
``[C, Q, Y]`` draw (old) against one flat ``[Q * Y]`` row per candidate materialised behind an
optimisation barrier (new; the same numbers for Threefry keys). Not adopted: see ../trace/README.md.

Run: ``python docs/measurements/2026-12-03/step_noise/ab.py OUT.json [WORKLOAD ...]``.
"""

import json
import pathlib
import statistics
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[4] / "benchmarks"))
import bench_planning as bp

from jaxmbrl import rollouts as R

OLD = R._imagined_transition


def new_transition(ro, noise_keys, t, s, a):
    """The candidate draw: flat rows, materialised, then reshaped to ``[C, Q, Y]``."""
    mean, var = R._model_step(ro, s, a)
    out_dim = mean.shape[-1] if ro.reward_fn is None else ro.obs_dim
    c = noise_keys.shape[0]
    eps = jax.vmap(lambda kk: jax.random.normal(jax.random.fold_in(kk, t), (ro.slots * out_dim,)))(
        noise_keys
    )
    eps = jax.lax.optimization_barrier(eps).reshape((c, ro.slots, out_dim))
    sample = mean[..., :out_dim] + jnp.sqrt(var[..., :out_dim]) * eps
    delta = sample[..., : ro.obs_dim]
    r_model = sample[..., ro.obs_dim] if ro.reward_fn is None else None
    return s + delta, r_model


def main(path, names, rounds=12, reps=3):
    out = {}
    for name in names:
        for dtype in ("float32", "bfloat16"):
            runners = {}
            for variant, fn in (("old", OLD), ("new", new_transition)):
                R._imagined_transition = fn
                runners[variant] = bp.Runner(name, dtype, "ts1")
            R._imagined_transition = OLD
            # the same keys and plan states: the chosen actions must be equal
            for _ in range(rounds):
                for r in runners.values():
                    r.run(reps)
            old, new = (statistics.median(runners[v].times) for v in ("old", "new"))
            same = bool(
                (runners["old"]._call() == runners["new"]._call()).all()
            )  # both runners have made the same number of calls with the same keys
            out[f"{name}/{dtype}"] = {"old_s": old, "new_s": new, "new_over_old": new / old,
                                      "same_action": same}  # fmt: skip
            print(f"{name} [{dtype}]: old {old:.4f} s, new {new:.4f} s, new/old "
                  f"{new / old:.3f}, same action {same}", flush=True)  # fmt: skip
    pathlib.Path(path).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or ["pendulum_cem", "inv_pendulum_cem", "pendulum_mppi"])
