#!/usr/bin/env python
"""PETS on MuJoCo Playground's DeepMind Control tasks against published results.

For each task (``playground:<Task>``): PETS (:func:`jaxmbrl.experiments.run_pets`, seeds
vmapped) up to a budget of environment steps, its learning curve (return of every episode
against the environment steps of data the model was trained on), oracle MPC (the same
planner with the true physics: the planner's ceiling on the task), and TD-MPC2's, SAC's and
DreamerV3's published returns beside them::

    python benchmarks/bench_dmc.py --tasks CartpoleSwingup --seeds 3 --steps 20000 \\
        --out docs/measurements/2026-12-02/dmc
    python benchmarks/bench_dmc.py --quick --out /tmp/bench_dmc_quick   # about a minute

How environment steps are counted. TD-MPC2's DMControl wrapper repeats every action twice
(``tdmpc2/envs/dmcontrol.py``: ``for _ in range(2): self.env.step(action)``) and its episodes
last 500 agent steps; the ``step`` column of its ``results/*.csv`` has that action repeat
multiplied back in (github.com/nicklashansen/tdmpc2/issues/45), so "100k steps" are 100,000
dm_control control steps, 100 episodes of 1,000, rewards summed over all of them.
Playground's DM Control tasks have ``episode_length`` 1,000 and ``action_repeat`` 1 at
dm_control's control step (``ctrl_dt``), so one step here is one such control step and the
returns are on the same 0-1,000 scale. The published number at N steps is an evaluation
of an agent trained on N steps; here the return of planned episode ``j`` is plotted at the
steps its model was trained on (``data_steps``: the random episodes and planned episodes
``1..j-1``), and the budget ``--steps`` N means the last planned episode plans with a model
trained on N steps (``N / T - R + 1`` planned episodes for ``R`` random episodes of ``T``
steps); the run collects ``N + T`` steps in all.

The oracle runs ``--oracle-episodes`` episodes per seed from fresh resets (its own compiled
program, compile time measured); ``--paired-oracle`` also plans every PETS episode from the
same start state with the true physics (``run_pets(..., oracle=True)``: the return a
perfect model would give, at several times the cost of the episode). ``--oracle-only`` runs
just the oracle of the given planner settings (``OUT/oracle_<Task><tag>.json``, to find a
planner's ceiling cheaply); a PETS run without oracle episodes takes its oracle from such a
file with the same task and planner, if there is one. ``--tag`` names a variant's files.

Writes ``OUT/<Task>.json`` (``write_json`` of ``common.py``: the machine record, the
configuration, the runner's results and a summary), ``OUT/<Task>.png`` (learning curves)
and ``OUT/bench_dmc.md`` (a table per task, rebuilt from every ``OUT/*.json`` of this script,
so tasks run one at a time accumulate), one task after the other; a line per episode as it
runs. Times are wall times on whatever else the machine is doing (the load average at the
start and end is recorded).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import machine, write_json

from jaxmbrl import envs, mpc
from jaxmbrl.agents.pets import PETSConfig
from jaxmbrl.cli.common import planner_option
from jaxmbrl.experiments import config_record, run_pets
from jaxmbrl.planners import registry

SOURCE = (
    "github.com/nicklashansen/tdmpc2 results/<task>.csv (mean of 3 seeds; steps include "
    "the action repeat of 2, issue #45)"
)
# Task -> dm_control name and published returns (mean of 3 seeds; None: not given).
PUBLISHED = {
    "CartpoleSwingup": {
        "dmc": "cartpole-swingup",
        "tdmpc2_100k": 839,
        "tdmpc2_1m": 876,
        "sac_1m": 839,
        "dreamerv3_1m": 780,
    },
    "PendulumSwingup": {
        "dmc": "pendulum-swingup",
        "tdmpc2_100k": 724,
        "tdmpc2_1m": 819,
        "sac_1m": None,
        "dreamerv3_1m": None,
    },
    "ReacherEasy": {
        "dmc": "reacher-easy",
        "tdmpc2_100k": 937,
        "tdmpc2_1m": 983,
        "sac_1m": None,
        "dreamerv3_1m": None,
    },
    "CheetahRun": {
        "dmc": "cheetah-run",
        "tdmpc2_100k": 519,
        "tdmpc2_1m": 844,
        "sac_1m": 730,
        "dreamerv3_1m": 638,
    },
}
STEPS_CONVENTION = (
    "one environment step = one dm_control control step (Playground action_repeat 1, "
    "episode 1000 steps); TD-MPC2's published steps count the same (its action repeat of 2 "
    "multiplied back in). data_steps = steps the model was trained on before the episode."
)
QUICK = {"tasks": ["PendulumSwingup"], "seeds": 2, "episode_length": 20, "steps": 40}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["CartpoleSwingup"], choices=PUBLISHED)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument(
        "--steps", type=int, default=20_000, help="data budget N (see the docstring)"
    )
    parser.add_argument("--episode-length", type=int, default=None, help="T (default 1000)")
    parser.add_argument("--random-episodes", type=int, default=1, help="R")
    parser.add_argument("--planner", default=None, help="planner name (default: PETS's)")
    parser.add_argument("--horizon", type=int, default=None, help="default: PETS's")
    parser.add_argument(
        "--planner-opt",
        type=planner_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a planner option (repeatable), e.g. num_samples=200",
    )
    parser.add_argument("--oracle-episodes", type=int, default=1, help="per seed; 0: none")
    parser.add_argument("--paired-oracle", action="store_true")
    parser.add_argument(
        "--oracle-only", action="store_true", help="only the oracle of these planner settings"
    )
    parser.add_argument("--tag", default="", help="appended to the output file names")
    parser.add_argument("--quick", action="store_true", help=f"tiny run: {QUICK}")
    parser.add_argument("--out", default="runs/bench_dmc")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


def make_config(args: argparse.Namespace, task: str) -> PETSConfig:
    """The library's default PETS with the command line's episode, budget and planner."""
    base = PETSConfig()
    spec = envs.load(f"playground:{task}", args.episode_length)[0]
    length = spec.episode_length
    num_episodes = args.steps // length - args.random_episodes + 1
    if num_episodes < 1:
        raise SystemExit(f"--steps {args.steps} leaves no planned episode of {length} steps")
    planner = base.planner.replace(
        name=args.planner, horizon=args.horizon, **dict(args.planner_opt)
    )
    return dataclasses.replace(
        base,
        env_name=f"playground:{task}",
        episode_length=args.episode_length,
        num_episodes=num_episodes,
        num_random_episodes=args.random_episodes,
        planner=planner,
    )


def run_oracle(config: PETSConfig, seeds: list[int], episodes: int) -> dict:
    """Oracle MPC: PETS's planner with the true physics, ``episodes`` per seed from fresh
    resets (keys ``fold_in(key(seed), 10**6 + k)``), one compiled program for all seeds."""
    spec, env = envs.load(config.env_name, config.episode_length)
    planner, _ = registry.build(config.planner, spec.action)
    fn = jax.jit(
        functools.partial(
            mpc.run_seeds,
            env,
            planner,
            num_steps=spec.episode_length,
            gamma=config.rollout.gamma,
        )
    )
    base = jax.vmap(jax.random.key)(np.asarray(seeds, np.uint32))
    keys = [
        jax.vmap(lambda k, e=e: jax.random.fold_in(k, 10**6 + e))(base) for e in range(episodes)
    ]
    start = time.perf_counter()
    compiled = fn.lower(keys[0]).compile()
    compile_s = time.perf_counter() - start
    returns, walls = [], []
    for e, k in enumerate(keys):
        start = time.perf_counter()
        ret = np.asarray(jax.block_until_ready(compiled(k).episode_return), np.float64)
        walls.append(time.perf_counter() - start)
        returns.append(ret)
        print(
            f"  oracle episode {e + 1}/{episodes}: return mean {ret.mean():.1f} "
            f"[min {ret.min():.1f}, max {ret.max():.1f}] ({walls[-1]:.1f} s)",
            flush=True,
        )
    returns = np.stack(returns, axis=1)  # [S, K]
    return {
        "returns": returns.tolist(),
        "mean": float(returns.mean()),
        "min": float(returns.min()),
        "max": float(returns.max()),
        "compile_s": compile_s,
        "episode_wall_s": walls,
        "s_per_env_step": statistics.median(walls) / spec.episode_length,
        "starts": "fresh resets, keys fold_in(key(seed), 1e6 + k)",
        "ctrl_dt": spec.ctrl_dt,
    }


def summarize(results: dict, config: PETSConfig) -> dict:
    """The learning curve, the score at the budget, and times, from the runner's results."""
    length = results["episode_length"]
    rets = np.array(results["episode_returns"], dtype=float)  # [S, J]
    num = rets.shape[1]
    data_steps = [(config.num_random_episodes + j) * length for j in range(num)]
    episode_walls = results["episode_wall_s"]
    train_walls = results["train_wall_s"]
    steady = [t + e for t, e in zip(train_walls[1:], episode_walls[1:], strict=True)]
    first = results["first_call_wall_s"]
    out = {
        "data_steps": data_steps,
        "collected_steps": [s + length for s in data_steps],
        "mean_per_episode": rets.mean(axis=0).tolist(),
        "min_per_episode": rets.min(axis=0).tolist(),
        "max_per_episode": rets.max(axis=0).tolist(),
        "random_mean": float(np.mean(np.array(results["random_episode_returns"], dtype=float))),
        "score_at_budget": float(rets[:, -1].mean()),
        "budget_steps": data_steps[-1],
        "last3_mean": float(rets[:, -3:].mean()),
        "best_episode_mean": float(rets.mean(axis=0).max()),
        "best_episode_data_steps": data_steps[int(rets.mean(axis=0).argmax())],
        "model_val_error": np.nanmean(
            np.array(results["model_val_error"], dtype=float), axis=0
        ).tolist(),
        "first_call_wall_s": first,
        "train_wall_s": train_walls,
        "episode_wall_s": episode_walls,
    }
    if steady:
        # Seconds per environment step, all seeds stepping together (train + episode).
        out["s_per_env_step"] = statistics.median(steady) / length
        out["s_per_env_step_per_seed"] = out["s_per_env_step"] / rets.shape[0]
        out["episode_s_per_env_step"] = statistics.median(episode_walls[1:]) / length
        out["compile_estimate_s"] = {
            "episode": first["episode"] - statistics.median(episode_walls[1:]),
            "train": first["train"] - statistics.median(train_walls[1:]),
        }
        if "oracle" in first and len(results["oracle_wall_s"]) > 1:
            out["compile_estimate_s"]["paired_oracle"] = first["oracle"] - statistics.median(
                results["oracle_wall_s"][1:]
            )
    if results.get("oracle_returns") and results["oracle_returns"][0]:
        orc = np.array(results["oracle_returns"], dtype=float)
        out["paired_oracle_mean_per_episode"] = orc.mean(axis=0).tolist()
        out["paired_oracle_mean"] = float(orc.mean())
    return out


def plot(path: pathlib.Path, task: str, report: dict) -> None:
    """Learning curves: every seed, their mean, the oracle and the published returns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, pub = report["summary"], report["published"]
    x = np.array(summary["data_steps"])
    rets = np.array(report["results"]["episode_returns"], dtype=float)
    rand = np.array(report["results"]["random_episode_returns"], dtype=float).mean(axis=1)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, seed_rets in enumerate(rets):
        ax.plot(
            x, seed_rets, color="C0", alpha=0.3, lw=1, label="PETS, each seed" if i == 0 else None
        )
        ax.plot([0], [rand[i]], "x", color="C0", alpha=0.5)
    ax.plot(x, rets.mean(axis=0), "o-", color="C0", lw=2, label=f"PETS, mean of {len(rets)}")
    if "oracle" in report:
        ax.axhline(
            report["oracle"]["mean"], color="C2", ls=":", lw=2, label="oracle MPC (same planner)"
        )
    if "paired_oracle_mean_per_episode" in summary:
        ax.plot(
            x,
            summary["paired_oracle_mean_per_episode"],
            color="C2",
            lw=1,
            alpha=0.6,
            label="oracle from each episode's start",
        )
    ax.axhline(
        pub["tdmpc2_100k"], color="C3", ls="--", label=f"TD-MPC2 at 100k ({pub['tdmpc2_100k']})"
    )
    ax.axhline(
        pub["tdmpc2_1m"],
        color="C3",
        ls="-.",
        alpha=0.5,
        label=f"TD-MPC2 at 1M ({pub['tdmpc2_1m']})",
    )
    ax.set_xlabel("environment steps of data (control steps; random episode at 0)")
    ax.set_ylabel(f"episode return ({report['results']['episode_length']} steps)")
    ax.set_title(f"PETS on playground:{task} (dm_control {pub['dmc']})")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}", flush=True)


def markdown(reports: list[dict], oracles: list[dict] = ()) -> str:
    """One table per PETS run (the learning curve, the oracle and the published returns),
    then the oracle-only runs."""
    lines = ["# PETS on DeepMind Control (MuJoCo Playground) against published results", ""]
    lines += [f"Steps: {STEPS_CONVENTION}", f"Published: {SOURCE}.", ""]
    for rep in reports:
        s, pub, res = rep["summary"], rep["published"], rep["results"]
        rets = np.array(res["episode_returns"], dtype=float)
        lines += [f"## {rep['task']}{rep.get('tag', '')} ({pub['dmc']})", ""]
        lines += [
            f"{len(res['seeds'])} seeds, episodes of {res['episode_length']} steps, "
            f"{rep['config']['num_random_episodes']} random episode(s) "
            f"(mean return {s['random_mean']:.1f}), planner {rep['config']['planner']}.",
            "",
            "| episode | data steps | PETS mean | per seed | model val err |",
            "|---:|---:|---:|---|---:|",
        ]
        for j, steps in enumerate(s["data_steps"]):
            per_seed = ", ".join(f"{r:.0f}" for r in rets[:, j])
            lines.append(
                f"| {j + 1} | {steps:,} | {rets[:, j].mean():.1f} | {per_seed} | "
                f"{s['model_val_error'][j]:.3g} |"
            )
        orc = rep.get("oracle")
        oracle_text = (
            "not run"
            if orc is None
            else (
                f"{orc['mean']:.1f} [min {orc['min']:.1f}, max {orc['max']:.1f}] over "
                f"{np.size(orc['returns'])} episodes"
                + (f" (from the --oracle-only run {orc['from']})" if "from" in orc else "")
            )
        )
        timing = (
            f"{s['s_per_env_step'] * 1e3:.1f} ms per environment step for all seeds together "
            f"(train + episode; episode alone {s['episode_s_per_env_step'] * 1e3:.1f} ms), "
            f"compile about {s['compile_estimate_s']['episode']:.0f} s (episode) + "
            f"{s['compile_estimate_s']['train']:.0f} s (training)"
            if "s_per_env_step" in s
            else "n/a (one planned episode)"
        )
        lines += [
            "",
            f"- PETS at the budget ({s['budget_steps']:,} steps of data): "
            f"**{s['score_at_budget']:.1f}**; last three episodes {s['last3_mean']:.1f}; "
            f"best episode mean {s['best_episode_mean']:.1f} (at {s['best_episode_data_steps']:,})",
            f"- oracle MPC (true physics, same planner): {oracle_text}",
        ]
        if "paired_oracle_mean" in s:
            lines.append(f"- oracle from every episode's start: {s['paired_oracle_mean']:.1f}")
        lines += [
            f"- TD-MPC2: {pub['tdmpc2_100k']} at 100k, {pub['tdmpc2_1m']} at 1M; SAC at 1M: "
            f"{pub['sac_1m'] or '-'}; DreamerV3 at 1M: {pub['dreamerv3_1m'] or '-'}",
            f"- wall: {timing}; the PETS run {rep['wall_s'] / 60:.1f} min "
            f"(load average {rep['loadavg_start'][0]:.1f} at start, "
            f"{rep['loadavg_end'][0]:.1f} at end, {os.cpu_count()} cores here)",
        ]
        if orc is not None:
            lines.append(
                f"- oracle: compile {orc['compile_s']:.0f} s, "
                f"{orc['s_per_env_step'] * 1e3:.1f} ms per environment step for all seeds"
            )
        lines += [f"- learning curves: {rep['task']}{rep.get('tag', '')}.png", ""]
    if oracles:
        lines += [
            "## Oracle MPC by planner settings (true physics, no learning)",
            "",
            "| task | planner | horizon (s) | options | return mean [min, max] | episodes | "
            "ms per step (all seeds) | compile s |",
            "|---|---|---:|---|---|---:|---:|---:|",
        ]
        for rep in oracles:
            planner, orc = rep["config"]["planner"], rep["oracle"]
            dt = orc.get("ctrl_dt")
            seconds = "" if dt is None else f" ({planner['horizon'] * dt:.2g})"
            lines.append(
                f"| {rep['task']} | {planner['name']} | {planner['horizon']}{seconds} | "
                f"{planner['options']} | {orc['mean']:.1f} [{orc['min']:.1f}, {orc['max']:.1f}]"
                f" | {np.size(orc['returns'])} | {orc['s_per_env_step'] * 1e3:.1f} | "
                f"{orc['compile_s']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def run_task(args: argparse.Namespace, task: str, out: pathlib.Path) -> dict:
    config = make_config(args, task)
    seeds = list(range(args.seed, args.seed + args.seeds))
    loadavg_start = os.getloadavg()
    print(
        f"== {task}: {len(seeds)} seeds, {config.num_random_episodes} random + "
        f"{config.num_episodes} planned episodes, planner {config.planner.as_dict()}",
        flush=True,
    )
    start = time.perf_counter()
    results = run_pets(
        config, seeds, oracle=args.paired_oracle, log=lambda line: print(f"  {line}", flush=True)
    )
    wall = time.perf_counter() - start
    report = {
        "benchmark": "bench_dmc",
        "task": task,
        "tag": args.tag,
        "env_name": config.env_name,
        "command": sys.argv,
        "machine": machine(),
        "steps_convention": STEPS_CONVENTION,
        "published": PUBLISHED[task],
        "published_source": SOURCE,
        "config": config_record(config),
        "summary": summarize(results, config),
        "wall_s": wall,
        "results": results,
    }
    if args.oracle_episodes > 0:
        report["oracle"] = run_oracle(config, seeds, args.oracle_episodes)
    else:  # an --oracle-only run of the same task and planner, if there is one
        for rep in load_reports(out)[1]:
            if rep["task"] == task and rep["config"]["planner"] == report["config"]["planner"]:
                report["oracle"] = {**rep["oracle"], "from": rep["file"]}
    report["loadavg_start"], report["loadavg_end"] = loadavg_start, os.getloadavg()
    write_json(out / f"{task}{args.tag}.json", report)
    plot(out / f"{task}{args.tag}.png", task, report)
    return report


def oracle_only(args: argparse.Namespace, task: str, out: pathlib.Path) -> dict:
    """``--oracle-only``: the oracle ceiling of the planner settings, no PETS."""
    config = make_config(args, task)
    seeds = list(range(args.seed, args.seed + args.seeds))
    loadavg_start = os.getloadavg()
    print(f"== {task}: oracle only, planner {config.planner.as_dict()}", flush=True)
    report = {
        "benchmark": "bench_dmc_oracle",
        "task": task,
        "env_name": config.env_name,
        "command": sys.argv,
        "machine": machine(),
        "config": config_record(config),
        "tag": args.tag,
        "oracle": run_oracle(config, seeds, max(args.oracle_episodes, 1)),
        "loadavg_start": loadavg_start,
        "loadavg_end": os.getloadavg(),
    }
    write_json(out / f"oracle_{task}{args.tag}.json", report)
    return report


def load_reports(out: pathlib.Path) -> tuple[list[dict], list[dict]]:
    """Every PETS report and every oracle-only report of this script in ``out``."""
    pets, oracles = [], []
    for path in sorted(out.glob("*.json")):
        data = json.loads(path.read_text())
        kind = data.get("benchmark") if isinstance(data, dict) else None
        if kind is not None:
            data["file"] = path.name
        if kind == "bench_dmc":
            pets.append(data)
        elif kind == "bench_dmc_oracle":
            oracles.append(data)
    return pets, oracles


def main(argv=None) -> int:
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        if args.oracle_only:
            oracle_only(args, task, out)
        else:
            rep = run_task(args, task, out)
            s = rep["summary"]
            print(
                f"{task}: PETS at {s['budget_steps']:,} steps {s['score_at_budget']:.1f} "
                f"(best episode mean {s['best_episode_mean']:.1f}); oracle "
                f"{rep['oracle']['mean'] if 'oracle' in rep else float('nan'):.1f}; TD-MPC2 "
                f"at 100k {rep['published']['tdmpc2_100k']}",
                flush=True,
            )
        (out / "bench_dmc.md").write_text(markdown(*load_reports(out)))
        print(f"wrote {out / 'bench_dmc.md'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
