#!/usr/bin/env python
"""Scaling over devices with ``jax.sharding``: the same program on 1 and D devices.

Two workloads, each run in a fresh process per device count ``D`` (CPU devices made with
``XLA_FLAGS=--xla_force_host_platform_device_count=D``; on a GPU machine the real devices):

* ``candidates``: one mbrl-lib default planning call (``bench_planning.py``'s
  ``pendulum_cem``: CEM 350 x 5 iterations, 20 particles, TS1, 7-member 4 x 200 ensemble)
  with the objective wrapped by :func:`jaxmbrl.sharding.shard_candidates` over a
  ``"candidates"`` mesh of all devices;
* ``seeds``: 8 (``--quick``: 2) independent planners (vmapped CEM calls, pop 50) whose
  states, keys and start observations are placed with
  :func:`jaxmbrl.sharding.shard_leading_axis` over a ``"seeds"`` mesh.

Reported per D: median [min-max] seconds per call, the speed-up over D = 1, and the largest
difference of the chosen actions from the D = 1 run (the sharded program computes the same
thing). On a CPU, "devices" split the same cores: one device already uses every core through
XLA's intra-op threads, so the speed-up measures how well the partitioned program uses them,
not extra hardware.

Run: ``python benchmarks/bench_devices.py [--quick] [--devices 1 2] [--out DIR]``; writes
``DIR/devices.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def worker(quick: bool) -> dict:
    import functools

    import jax
    import jax.numpy as jnp
    import numpy as np

    sys.path.insert(0, str(HERE))
    from bench_planning import ELITE_MEMBERS, PARTICLES, WORKLOADS, env_spec, make_planner
    from common import stats, timed

    from jaxmbrl import sharding as shd
    from jaxmbrl.models import ensemble as ens
    from jaxmbrl.planners import MBRL_LIB_STEP, CEMConfig, cem
    from jaxmbrl.rollouts import RolloutConfig, make_particle_objective

    spec = env_spec("pendulum")
    config = ens.EnsembleConfig(obs_dim=3, action_dim=1, num_members=7, num_elites=5)
    model = ens.init(config, jax.random.key(0))
    rollout = RolloutConfig(num_particles=PARTICLES, propagation="ts1")
    reps = 2 if quick else 6
    out = {"devices": len(jax.devices()), "device": str(jax.devices()[0].device_kind)}

    def objective_for(model, obs):
        return make_particle_objective(
            rollout, functools.partial(ens.predict_grouped, config, model), obs,
            num_members=ELITE_MEMBERS, reward_fn=spec["reward_fn"],
        )  # fmt: skip

    # candidates: one planning call, candidates split over the mesh
    workload = WORKLOADS["pendulum_cem_pop50" if quick else "pendulum_cem"]
    planner, candidates = make_planner(workload, spec["bound"])
    mesh = shd.device_mesh("candidates")

    @jax.jit
    def plan(state, key, model, obs):
        objective = shd.shard_candidates(objective_for(model, obs), mesh)
        action, _, _ = planner.plan(state, key, objective)
        return action

    obs = jnp.asarray(spec["obs0"], jnp.float32)
    args = (planner.init(), jax.random.key(1), model, obs)
    action = plan(*args)
    s = stats(timed(lambda: plan(*args), reps))
    out["candidates"] = {
        "seconds": s,
        "transitions_per_call": candidates * PARTICLES * workload.horizon,
        "action": np.asarray(action).tolist(),
    }

    # seeds: B independent planners, sharded over the mesh
    b = 2 if quick else 8
    small = cem(CEMConfig(horizon=15, action_low=(-2.0,), action_high=(2.0,),
                          num_samples=50, num_elites=5, num_iterations=5,
                          **MBRL_LIB_STEP))  # fmt: skip

    def plan_one(state, key, model, obs):
        action, _, _ = small.plan(state, key, objective_for(model, obs))
        return action

    plan_many = jax.jit(jax.vmap(plan_one, in_axes=(0, 0, None, 0)))
    theta = jnp.linspace(-np.pi, np.pi, b, endpoint=False)
    batch = (
        jax.vmap(lambda _: small.init())(jnp.arange(b)),
        jax.random.split(jax.random.key(2), b),
        jnp.stack([jnp.cos(theta), jnp.sin(theta), jnp.zeros(b)], axis=-1),
    )
    states, keys, starts = shd.shard_leading_axis(batch, shd.seed_mesh())
    actions = plan_many(states, keys, model, starts)
    s = stats(timed(lambda: plan_many(states, keys, model, starts), reps))
    out["seeds"] = {
        "seconds": s,
        "batch": b,
        "transitions_per_call": b * 50 * 5 * PARTICLES * 15,
        "action": np.asarray(actions).tolist(),
        "shards": shd.num_shards(actions),
    }
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        from jaxmbrl.reporting import strict_json  # non-finite values as null

        print("RESULT " + json.dumps(strict_json(worker(args.quick)), allow_nan=False), flush=True)
        return {}

    sys.path.insert(0, str(HERE))
    from common import machine, write_json

    runs = []
    for d in args.devices:
        env = dict(os.environ)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={d}".strip()
        cmd = [sys.executable, str(HERE / "bench_devices.py"), "--worker"]
        if args.quick:
            cmd.append("--quick")
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"device worker (D={d}) failed:\n{res.stderr[-3000:]}")
        run = json.loads(line[len("RESULT ") :])
        run["requested_devices"] = d
        runs.append(run)
    base = runs[0]
    for run in runs:
        for part in ("candidates", "seeds"):
            r = run[part]
            r["speedup_vs_first"] = base[part]["seconds"]["median"] / r["seconds"]["median"]
            r["max_action_diff_vs_first"] = float(
                max(
                    abs(a - b)
                    for a, b in zip(_flat(r["action"]), _flat(base[part]["action"]), strict=True)
                )
            )
            print(
                f"D={run['devices']} {part}: {r['seconds']['median']:.3f} s/call "
                f"({r['speedup_vs_first']:.2f}x vs D={base['devices']}), "
                f"max |action - D1 action| = {r['max_action_diff_vs_first']:.2e}",
                flush=True,
            )
    report = {"benchmark": "devices", "machine": machine(), "quick": args.quick, "runs": runs}
    write_json(pathlib.Path(args.out) / "devices.json", report)
    return report


def _flat(x):
    """The numbers of a nested list; a ``null`` (a non-finite action) reads back as NaN."""
    if isinstance(x, list):
        for v in x:
            yield from _flat(v)
    else:
        yield math.nan if x is None else x


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
