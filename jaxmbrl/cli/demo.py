"""``jaxmbrl demo``: a short PETS run on Pendulum-v1 that learns visibly in a few minutes.

1 seed, the default preset, 5 planned episodes, with the true-dynamics return from the same
start states beside each one. It starts afresh in ``DIR`` (default ``runs/demo``) every time,
deleting a previous demo's outputs only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from jaxmbrl.cli import common
from jaxmbrl.cli import pets as pets_cmd

DEMO_OUT = os.path.join("runs", "demo")
DEMO_SEEDS = (0,)
# What a previous demo leaves in its folder; `jaxmbrl demo` deletes these (and only these).
DEMO_OUTPUTS = ("checkpoints", "results.json", "learning_curve.png")


def add_parser(sub, parents) -> None:
    del parents
    p = sub.add_parser(
        "demo",
        help="a short PETS run on Pendulum-v1 that learns in a few minutes",
        description="PETS on Pendulum-v1 with the default preset: 1 seed, 1 random and 5 "
        "planned episodes. Prints the return of every episode (and what the same planner gets "
        "with the true dynamics from the same start) and writes a learning curve. "
        "Starts afresh every time (deletes a previous demo's results, plot and checkpoints).",
    )
    p.add_argument("--out", default=DEMO_OUT, help=f"output folder (default {DEMO_OUT})")
    p.add_argument("--no-progress", action="store_true", help="no live progress bar")
    p.set_defaults(handler=run)


def demo_config():
    """The demo's experiment (a function so that tests can swap in a tiny one)."""
    from jaxmbrl.agents.pets import PETSConfig

    return PETSConfig.preset("default", num_episodes=5)


def _check_out(out: str) -> None:
    """Refuse a folder whose ``results.json`` is not a demo's (nothing there is deleted)."""
    path = os.path.join(out, "results.json")
    if not os.path.exists(path):
        return
    try:
        with open(path) as f:
            command = json.load(f).get("command")
    except (OSError, ValueError, AttributeError):
        command = None
    if command != "demo":
        raise common.UsageError(
            f"--out {out!r} holds results that are not a demo's; the demo would delete them, "
            "so choose another --out"
        )


def run(args: argparse.Namespace) -> int:
    config = demo_config()
    setup = pets_cmd.check(config)
    seeds = list(DEMO_SEEDS)
    _check_out(args.out)
    out = common.prepare_out(args.out)
    from jaxmbrl import runner

    try:
        with runner.lock_output(out):  # never a live run's outputs
            for name in DEMO_OUTPUTS:  # start afresh: a previous demo's outputs only
                path = os.path.join(out, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                elif os.path.lexists(path):
                    os.unlink(path)
    except runner.OutputLockedError as e:
        raise common.out_in_use(out, e.pid) from None
    print(pets_cmd.describe(config, setup, seeds, "default"), flush=True)
    return pets_cmd.run_experiment(
        config,
        seeds,
        out,
        command="demo",
        resume=False,
        progress=not args.no_progress and sys.stdout.isatty(),
        extra={"preset": "default", "base_seed": seeds[0]},
        # The true-dynamics return from the same start states shows which episodes are hard
        # for the planner itself (a start hanging down costs about -350 even then).
        oracle=True,
    )
