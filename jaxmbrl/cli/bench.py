"""``jaxmbrl bench``: run the benchmarks of a source checkout (``benchmarks/run_all.py``).

The benchmark scripts live outside the package, beside it in a checkout of the repository;
this command finds them there (or where ``--benchmarks`` or ``JAXMBRL_BENCHMARKS`` says) and
runs ``run_all.py`` with this Python, passing the flags through; ``run_all.py`` owns the
section names and checks them (and ``--out``) itself, so the list lives in one place.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys

from jaxmbrl.cli import common


def add_parser(sub, parents) -> None:
    del parents
    p = sub.add_parser(
        "bench",
        help="run the benchmarks (planning vs mbrl-lib, scaling, rollouts, physics, "
        "training, end to end, devices) and write a report",
        description="Runs benchmarks/run_all.py from a checkout of the repository: each "
        "section in its own process, then DIR/bench.json, DIR/bench.md, DIR/*.png and every "
        "section's own JSON. mbrl-lib runs in the same run where its environment exists "
        "(PEER_TORCH, default /tmp/peer-torch). Run it on a quiet machine: the full run takes "
        "about 30 minutes on a 2-core CPU; --quick about 2.5.",
    )
    p.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    p.add_argument("--quick", action="store_true", help="smoke run: small workloads")
    p.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="SECTION",
        help="sections to run: planning, scaling, rollouts, physics, training, end_to_end, "
        "devices (run_all.py checks the names and --out, in one line, before any work)",
    )
    p.add_argument("--no-peer", action="store_true", help="do not run mbrl-lib")
    p.add_argument(
        "--benchmarks",
        default=None,
        metavar="DIR",
        help="the benchmarks folder (default: $JAXMBRL_BENCHMARKS, else the checkout's)",
    )
    p.set_defaults(handler=run)


def benchmarks_dir(explicit: str | None = None) -> pathlib.Path:
    """The folder holding ``run_all.py``; a usage error saying where it looked if none."""
    checkout = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
    candidates = [explicit] if explicit else [os.environ.get("JAXMBRL_BENCHMARKS"), checkout]
    for folder in filter(None, candidates):
        if (pathlib.Path(folder) / "run_all.py").is_file():
            return pathlib.Path(folder)
    looked = ", ".join(str(c) for c in candidates if c)
    raise common.UsageError(
        f"the benchmark scripts are not installed with the package; run this from a checkout "
        f"of the repository or pass --benchmarks DIR (looked for run_all.py in {looked})"
    )


def run(args: argparse.Namespace) -> int:
    folder = benchmarks_dir(args.benchmarks)
    cmd = [sys.executable, str(folder / "run_all.py"), "--out", args.out]
    cmd += ["--quick"] * args.quick + ["--no-peer"] * args.no_peer
    if args.only:
        cmd += ["--only", *args.only]
    return subprocess.run(cmd, check=False).returncode
