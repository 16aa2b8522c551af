#!/usr/bin/env python
"""Compare PETS configurations on one environment: returns, the oracle beside them, and time.

Each variant is the ``default`` preset with overrides, written ``NAME:key=value,key=value``::

    python benchmarks/tune_pets.py --seeds 5 --episodes 10 \\
        "now:" "icem:planner=icem,horizon=30,num_samples=200,num_iterations=3"

Keys: ``planner``, ``horizon``; ``hidden`` (``128x128``), ``members``, ``model_elites``,
``det`` (deterministic heads, 0/1); ``epochs``, ``steps`` (``TrainConfig.max_steps``),
``patience``, ``lr``, ``batch``, ``wd``; ``reinit`` (0/1: ``PETSConfig.reinit_model``);
``particles``, ``prop``; ``dtype`` (planning matmul dtype); ``learned`` (0/1: learned reward
forced off/on); ``random`` (random episodes); ``reward_model`` (separate/joint); ``gamma``;
any other key is a planner option (``num_samples``, ``temperature``, ...).

For each variant: the mean return per planned episode over seeds (and the oracle's with
``--oracle``: the same planner from the same start states with the true dynamics), the mean
over seeds and the last three episodes, the worst seed's last-three mean, and the wall time
of the whole run, of training and of the planned episodes (first episode's compile
included). Writes ``OUT/<variant>.json`` (the runner's results plus a summary) and prints
one line per variant. Run on an idle machine: the variants run one after the other.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import machine, write_json

from jaxmbrl.agents.pets import PETSConfig
from jaxmbrl.cli.common import planner_option
from jaxmbrl.experiments import run_pets

# key -> (which part of the config, its field, how to read the value)
_KEYS = {
    "hidden": ("model", "hidden_sizes", lambda v: tuple(int(w) for w in v.split("x"))),
    "members": ("model", "num_members", int),
    "model_elites": ("model", "num_elites", int),
    "det": ("model", "deterministic", lambda v: bool(int(v))),
    "epochs": ("train", "max_epochs", int),
    "steps": ("train", "max_steps", lambda v: None if v == "none" else int(v)),
    "patience": ("train", "patience", int),
    "lr": ("train", "learning_rate", float),
    "batch": ("train", "batch_size", int),
    "wd": ("train", "weight_decay", float),
    "particles": ("rollout", "num_particles", int),
    "prop": ("rollout", "propagation", str),
    "gamma": ("rollout", "gamma", float),
    "reinit": (None, "reinit_model", lambda v: bool(int(v))),
    "dtype": (None, "planning_matmul_dtype", str),
    "learned": (None, "learned_reward", lambda v: bool(int(v))),
    "random": (None, "num_random_episodes", int),
    "reward_model": (None, "reward_model", str),
}


def parse_variant(text: str, base: PETSConfig) -> tuple[str, PETSConfig]:
    """``"NAME:key=value,..."`` -> ``(NAME, config)`` (see the module docstring)."""
    name, _, rest = text.partition(":")
    parts = {"model": {}, "train": {}, "rollout": {}, None: {}}
    planner = base.planner
    for item in filter(None, rest.split(",")):
        key, _, raw = item.partition("=")
        if key == "planner":
            planner = planner.replace(name=raw)
        elif key == "horizon":
            planner = planner.replace(horizon=int(raw))
        elif key in _KEYS:
            part, field, cast = _KEYS[key]
            parts[part][field] = cast(raw)
        else:
            planner = planner.replace(**dict([planner_option(item)]))
    config = dataclasses.replace(
        base,
        planner=planner,
        **{
            part: dataclasses.replace(getattr(base, part), **parts[part])
            for part in ("model", "train", "rollout")
        },
        **parts[None],
    )
    return name or "default", config


def summarize(results: dict, wall: float) -> dict:
    """Mean return per episode, last-3 statistics and times from the runner's results."""
    rets = np.array(results["episode_returns"], dtype=float)  # [S, J]
    out = {
        "mean_per_episode": rets.mean(axis=0).round(1).tolist(),
        "random_mean": float(np.mean(np.array(results["random_episode_returns"], dtype=float))),
        "last3_mean": float(rets[:, -3:].mean()),
        "last3_worst_seed": float(rets[:, -3:].mean(axis=1).min()),
        "wall_s": wall,
        "train_s": float(sum(results["train_wall_s"])),
        "episode_s": float(sum(results["episode_wall_s"])),
        "train_s_per_episode": [round(t, 2) for t in results["train_wall_s"]],
        "val_error_per_episode": np.nanmean(
            np.array(results["model_val_error"], dtype=float), axis=0
        ).tolist(),
    }
    if results.get("oracle_returns") and results["oracle_returns"][0]:
        orc = np.array(results["oracle_returns"], dtype=float)
        out["oracle_mean_per_episode"] = orc.mean(axis=0).round(1).tolist()
        out["oracle_last3_mean"] = float(orc[:, -3:].mean())
        out["oracle_s"] = float(sum(results["oracle_wall_s"]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="NAME:key=value,... (see the docstring)")
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--oracle", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="the runner's per-episode lines")
    parser.add_argument("--out", default="runs/tune_pets")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = PETSConfig(env_name=args.env, num_episodes=args.episodes)
    seeds = list(range(args.seed, args.seed + args.seeds))
    for text in args.variants:
        name, config = parse_variant(text, base)
        start = time.perf_counter()
        results = run_pets(config, seeds, oracle=args.oracle, log=print if args.verbose else None)
        summary = summarize(results, time.perf_counter() - start)
        write_json(
            out / f"{name}.json",
            {"variant": text, "machine": machine(), "summary": summary, "results": results},
        )
        orc = (
            f" oracle {summary['oracle_last3_mean']:.1f}" if "oracle_last3_mean" in summary else ""
        )
        print(
            f"{name:>14}: last3 {summary['last3_mean']:8.1f} "
            f"worst {summary['last3_worst_seed']:8.1f}"
            f"{orc}  wall {summary['wall_s']:6.1f} s (train {summary['train_s']:5.1f}, "
            f"episodes {summary['episode_s']:5.1f})  per ep {summary['mean_per_episode']}",
            flush=True,
        )
        print(json.dumps({"variant": name, "random": summary["random_mean"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
