#!/usr/bin/env python
"""Model training schedules for PETS: validation error against cost as the data grows.

PETS trains its ensemble before every planned episode on all the data so far. This script
replays that growth on fixed data and compares schedules on the same held-out test set:

* data: one random episode then ``J`` (10) episodes of MPC with the true dynamics (MPPI,
  H 30, 100 x 2: swing-ups of varied quality, like the data PETS collects once its model is
  good) on Pendulum-v1, 200 steps each; the test set is one random and two such episodes
  from other keys;
* call ``k`` (1..J) trains on the first ``k + 1`` episodes, held in a buffer of the full
  capacity with a mask (as PETS does), for ``S`` (5) training keys at once under ``vmap``
  (as PETS trains its seeds, so a ``while_loop`` runs as long as the slowest key);
* ``scratch`` schedules start every call from a fresh ensemble (early stopping as
  configured); ``warm`` schedules continue the previous call's ensemble (the first call
  starts fresh and trains as the ``first`` settings say), for a fixed step budget.

Reported per schedule and call: the wall time of the call (the first call's compile
excluded: every schedule's first call is run twice and the second is timed), the epochs run
(the slowest key), and the elite members' mean one-step error on the test set (MSE of the
mean prediction on targets normalised by the model's own statistics; ~1 for a model that
predicts the mean), median over keys. Writes ``OUT/train_schedule.json``.

Run: ``python benchmarks/bench_train_schedule.py [--quick] [--out DIR] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import machine, write_json

from jaxmbrl import envs, mpc
from jaxmbrl.models import training
from jaxmbrl.models.spec import ModelSpec
from jaxmbrl.planners import MPPIConfig, mppi

HIDDEN = (128, 128, 128)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A training schedule: ``warm`` continues the previous ensemble with ``train``; the first
    call (and every call without ``warm``) trains a fresh ensemble with ``first``."""

    model: ModelSpec
    first: training.TrainConfig
    train: training.TrainConfig
    warm: bool


def schedules(hidden: tuple[int, ...] = HIDDEN) -> dict[str, Schedule]:
    """``scratch_{gauss,det}`` and ``warm{500,1000,2000}_{gauss,det}`` (5 members of
    ``hidden``, 3 elites); any ``warm<steps>_...`` name is also understood by :func:`main`."""
    gauss = ModelSpec(num_members=5, num_elites=3, hidden_sizes=hidden)
    det = dataclasses.replace(gauss, deterministic=True)
    scratch = training.TrainConfig(max_epochs=1000, patience=30, learning_rate=1e-3)
    out = {
        "scratch_gauss": Schedule(gauss, scratch, scratch, False),
        "scratch_det": Schedule(det, scratch, scratch, False),
    }
    for steps in (200, 500, 1000, 2000):
        budget = dataclasses.replace(scratch, max_steps=steps, patience=1000)
        out[f"warm{steps}_gauss"] = Schedule(gauss, scratch, budget, True)
        out[f"warm{steps}_det"] = Schedule(det, scratch, budget, True)
    return out


def collect(env, spec, keys) -> dict[str, np.ndarray]:
    """One random episode then oracle-MPC episodes, one per key: items ``[K*T, ...]``."""
    low, high = spec.action.low, spec.action.high
    planner = mppi(
        MPPIConfig(horizon=30, action_low=low, action_high=high, num_samples=100, num_iterations=2)
    )
    t = spec.episode_length
    run = jax.jit(functools.partial(mpc.run_seeds, env, planner, num_steps=t))
    rand = mpc.random_planner(env.sample_action)
    run_rand = jax.jit(
        lambda k: mpc.episode(env, rand, None, jax.random.fold_in(k, 1), jax.random.split(k, t))
    )
    records = [run_rand(keys[0])]
    planned = run(keys[1:])
    records += [jax.tree.map(lambda x, i=i: x[i], planned) for i in range(len(keys) - 1)]
    cat = lambda f: np.concatenate([np.asarray(f(r)) for r in records])
    return {
        "obs": cat(lambda r: r.observations).astype(np.float32),
        "action": cat(lambda r: r.actions).reshape(-1, spec.action.model_dim).astype(np.float32),
        "next_obs": cat(lambda r: r.next_observations).astype(np.float32),
        "reward": cat(lambda r: r.rewards).astype(np.float32),
        "returns": np.array([float(r.episode_return) for r in records]),
    }


def run_schedule(name, sched, spec, data, test, episodes, num_keys, log):
    mc = sched.model.ensemble(
        obs_dim=spec.obs_dim, action_dim=spec.action.model_dim, learn_reward=False
    )
    t = spec.episode_length
    capacity = (episodes + 1) * t

    def one(tc, warm, key, state, mask):
        return training.train(
            mc,
            tc,
            key,
            state if warm else None,
            data["obs"][:capacity],
            data["action"][:capacity],
            data["next_obs"][:capacity],
            data["reward"][:capacity],
            mask=mask,
        )

    def fresh(tc):
        return jax.jit(jax.vmap(lambda k, m: one(tc, False, k, None, m), in_axes=(0, None)))

    def cont(tc):
        return jax.jit(jax.vmap(lambda k, s, m: one(tc, True, k, s, m), in_axes=(0, 0, None)))

    test_err = jax.jit(
        jax.vmap(
            lambda s: training.evaluate(
                mc, s, test["obs"], test["action"], test["next_obs"], test["reward"]
            )[s.elite_idx].mean()
        )
    )
    first_fn, warm_fn = (
        fresh(sched.first),
        (cont(sched.train) if sched.warm else fresh(sched.train)),
    )
    rows = []
    state = None
    for k in range(1, episodes + 1):
        mask = jnp.arange(capacity) < (k + 1) * t
        keys = jax.random.split(jax.random.key(1000 + k), num_keys)
        if k == 1 or not sched.warm:
            fn = first_fn if k == 1 else warm_fn
            args = (keys, mask)
        else:
            fn, args = warm_fn, (keys, state, mask)
        compile_s = None
        if k <= 2:  # compile (and run) once before timing
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            compile_s = time.perf_counter() - start
        start = time.perf_counter()
        state, tlog = jax.block_until_ready(fn(*args))
        wall = time.perf_counter() - start
        err = np.asarray(test_err(state))
        row = {
            "call": k,
            "rows": (k + 1) * t,
            "wall_s": wall,
            "first_run_s": compile_s,
            "epochs": int(np.max(np.asarray(tlog.num_epochs))),
            "test_error_median": float(np.median(err)),
            "test_error_max": float(np.max(err)),
            "val_error_median": float(np.median(np.asarray(tlog.val_error).min(axis=1))),
        }
        rows.append(row)
        log(
            f"  {name:>16} call {k:2d}: {row['wall_s']:6.2f} s  epochs {row['epochs']:4d}  "
            f"test err {row['test_error_median']:.2e} (max {row['test_error_max']:.2e})"
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 calls, 2 keys, 2 schedules")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--hidden", default="128x128x128", help="hidden widths, e.g. 64x64")
    parser.add_argument("--out", default="runs/bench_train_schedule")
    args = parser.parse_args(argv)
    episodes, num_keys = (3, 2) if args.quick else (args.episodes, args.keys)
    spec, env = envs.load("Pendulum-v1")
    data = collect(env, spec, jax.random.split(jax.random.key(0), episodes + 1))
    test = collect(env, spec, jax.random.split(jax.random.key(1), 3))
    print(f"data returns: {np.round(data['returns'], 1).tolist()}")
    hidden = tuple(int(w) for w in args.hidden.split("x"))
    all_s = schedules(hidden)
    names = args.only or (["scratch_gauss", "warm1000_det"] if args.quick else list(all_s))
    report = {
        "machine": machine(),
        "hidden": HIDDEN,
        "episodes": episodes,
        "keys": num_keys,
        "data_returns": data["returns"].tolist(),
        "schedules": {},
    }
    for name in names:
        rows = run_schedule(name, all_s[name], spec, data, test, episodes, num_keys, print)
        walls = [r["wall_s"] for r in rows]
        report["schedules"][name] = {
            "calls": rows,
            "total_wall_s": sum(walls),
            "last_test_error": rows[-1]["test_error_median"],
        }
        print(
            f"{name:>16}: total {sum(walls):6.1f} s, max call {max(walls):5.1f} s, "
            f"final test err {rows[-1]['test_error_median']:.2e}",
            flush=True,
        )
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"train_schedule_{args.hidden}.json"
    write_json(out / name, report)
    print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
