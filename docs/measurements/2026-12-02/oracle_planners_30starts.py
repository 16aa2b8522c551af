"""Planners with the true dynamics on the 30 start states of the 10-seed Pendulum-v1 run,
against the optimum (``pendulum_optimal.json``, from ``pendulum_optimal.py``).

Each variant is ``NAME:planner=P,horizon=H,OPTION=VALUE,...`` (planner options as the CLI's
``--planner-opt``). The 30 episodes (seeds 0-9, planned episodes 8-10 of the default PETS
run) run as one vmapped, jitted program per variant, from the same reset and step keys as
that run.

With ``--random-starts=N`` first, it uses N other start states (from a fixed key) instead,
and solves the DP for them here (about a minute).

Run: python docs/measurements/2026-12-02/oracle_planners_30starts.py \
  default:planner=mppi,horizon=30,num_samples=100,num_iterations=2 ...
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import jax
import numpy as np

from jaxmbrl import envs, mpc
from jaxmbrl.cli.common import planner_option
from jaxmbrl.planners import registry

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from pendulum_optimal import solve, start_keys

HERE = pathlib.Path(__file__).resolve().parent


def parse(text):
    name, _, rest = text.partition(":")
    opts = dict(planner_option(kv) for kv in rest.split(",") if kv)
    planner = opts.pop("planner", "mppi")
    horizon = int(opts.pop("horizon", 30))
    return name, registry.PlannerSpec(name=planner, horizon=horizon, options=opts)


def main():
    args = sys.argv[1:]
    spec, functions = envs.load("Pendulum-v1")
    n_random = (
        int(args.pop(0).split("=")[1]) if args and args[0].startswith("--random-starts") else 0
    )
    if n_random:
        # More start states than the run's 30 (to compare planners with less noise): reset and
        # step keys from a fixed key; the optimum from the DP solved here.
        k_reset, k_loop = jax.random.split(
            jax.random.split(jax.random.key(12345), 2)[1], (2, n_random)
        )
        _, greedy = solve(601, 401, 81)[1:]
        states = jax.vmap(lambda k: functions.reset(k)[1])(k_reset)
        best = np.array(
            [float(greedy(t, d)) for t, d in zip(states.theta, states.theta_dot, strict=True)]
        )
        tag = f"_random{n_random}"
    else:
        optimal = json.loads((HERE / "pendulum_optimal.json").read_text())
        best = np.array([r["dp_greedy"] for r in optimal["rows"]])
        keys = [k for s in range(10) for k in start_keys(s)[7:]]
        k_reset = jax.numpy.stack([k[0] for k in keys])
        k_loop = jax.numpy.stack([k[1] for k in keys])
        tag = ""
    groups = best.size // 3
    oracle = mpc.oracle(functions)
    out = {"optimum" + tag: {"mean": float(best.mean()), "returns": best.tolist()}}
    print(
        f"optimum (DP greedy) mean {best.mean():.1f}, worst seed {best.reshape(groups, 3).mean(1).min():.1f}"
    )
    for text in args:
        name, pspec = parse(text)
        planner, cfg = registry.build(pspec, spec.action)

        def one(kr, kl, planner=planner):
            steps = jax.random.split(kl, spec.episode_length)
            return mpc.episode(functions, planner, oracle, kr, steps).episode_return

        run = jax.jit(jax.vmap(one))
        t0 = time.time()
        ret = np.asarray(run(k_reset, k_loop))
        t1 = time.time()
        ret = np.asarray(run(k_reset, k_loop))
        t2 = time.time()
        gap = ret - best
        if hasattr(cfg, "candidates_per_call"):  # iCEM: a shrinking population, elites kept
            calls = cfg.candidates_per_call()
        else:
            calls = getattr(cfg, "num_iterations", 1) * getattr(cfg, "num_samples", 0)
        row = dict(
            spec=text,
            mean=float(ret.mean()),
            worst_seed=float(ret.reshape(groups, 3).mean(1).min()),
            mean_gap=float(gap.mean()),
            starts_20_below_optimum=int((gap < -20).sum()),
            candidates_per_step=calls,
            model_steps_per_step=calls * pspec.horizon,
            wall_s=t2 - t1,
            compile_and_run_s=t1 - t0,
            returns=ret.tolist(),
        )
        out[name + tag] = row
        print(
            f"{name + tag:24s} mean {row['mean']:7.1f}  worst seed {row['worst_seed']:7.1f}  gap {row['mean_gap']:6.1f}  "
            f">20 below opt {row['starts_20_below_optimum']:3d}/{best.size}  H*N*I {row['model_steps_per_step']:7d}  {row['wall_s']:.1f} s",
            flush=True,
        )
    path = HERE / "oracle_planners_30starts.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(out)
    path.write_text(json.dumps(old, indent=1))


if __name__ == "__main__":
    main()
