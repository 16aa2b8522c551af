#!/usr/bin/env python
"""Where a planning call's time goes: the member MLPs alone against the whole call.

For four workloads of ``bench_planning.py`` and both matmul precisions, times (a) the whole
compiled planning call and (b) a scan of only the ensemble's forward passes on the same rows
(``N * P / K`` rows per elite member, ``H * iterations`` steps): the rest of the call is
particle shuffling (TS1), sampling, rewards and the planner's own work.

Run: ``python benchmarks/profile_planning_call.py OUT.json``.
"""

import pathlib
import statistics
import sys
import time

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_planning as bp
from common import write_json

from jaxmbrl.models import ensemble as ens

WORKLOADS = ("pendulum_cem_pop50", "pendulum_cem", "pendulum_mppi", "pendulum_cem_pop2000")


def member_mlps(config, steps: int):
    """Jitted ``(model, s [K, R, O], a [K, R, A])``: ``steps`` grouped forward passes."""

    @jax.jit
    def forward(model, s, a):
        def body(c, _):
            mean, _ = ens.predict_grouped(config, model, c, a)
            return c + 1e-3 * mean[..., :3], None

        return jax.lax.scan(body, s, None, length=steps)[0]

    return forward


def main(path: str) -> dict:
    out = {}
    for name in WORKLOADS:
        w = bp.WORKLOADS[name]
        for dtype in ("float32", "bfloat16"):
            runner = bp.Runner(name, dtype, "ts1")
            model = runner.args[0]
            config = ens.EnsembleConfig(
                obs_dim=3, action_dim=1, num_members=7, num_elites=5, matmul_dtype=dtype
            )
            rows = w.population * bp.PARTICLES // bp.ELITE_MEMBERS
            forward = member_mlps(config, w.horizon * w.iterations)
            s = jax.random.normal(jax.random.key(0), (bp.ELITE_MEMBERS, rows, 3))
            a = jax.random.normal(jax.random.key(1), (bp.ELITE_MEMBERS, rows, 1))
            forward(model, s, a).block_until_ready()
            reps = 3 if w.population > 1000 else 7
            mlp_times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                forward(model, s, a).block_until_ready()
                mlp_times.append(time.perf_counter() - t0)
            runner.run(reps)
            call, mlp = statistics.median(runner.times), statistics.median(mlp_times)
            out[f"{name}/{dtype}"] = {"call_s": call, "mlp_only_s": mlp, "mlp_share": mlp / call}
            print(
                f"{name} [{dtype}]: call {call:.4f} s, member MLPs alone {mlp:.4f} s "
                f"({100 * mlp / call:.0f}% of the call), rest {call - mlp:.4f} s",
                flush=True,
            )
    write_json(pathlib.Path(path), out)
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/profile_planning_call.json")
