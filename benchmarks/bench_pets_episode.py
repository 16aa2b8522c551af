"""One 200-step PETS episode with mbrl-lib's exact defaults: jaxmbrl against mbrl-lib, one run.

jaxmbrl runs ``PETSConfig.preset("mbrl-lib")`` on Pendulum-v1 (7-member Gaussian ensemble
4 x 200 SiLU, 5 elites, 20 particles, TS1, CEM population 350 / 35 elites / 5 iterations,
horizon 15): a random episode and a model training first (so the model is a real one), then
the planned episode -- 200 planning calls in one compiled ``lax.scan`` -- is timed after
compilation. mbrl-lib's ``agent.act`` runs the same 200-step episode in its own environment
(``benchmarks/peer_mbrl_pets_episode.py`` in ``$PEER_TORCH``, tuned malloc), between two
jaxmbrl repeats, so both see the machine in the same state.

The episode is timed for each planning precision (``--dtypes``; ``planning_matmul_dtype``).
Then a whole default PETS run (``PETSConfig()``, Pendulum-v1, 1 seed, ``--full-run-episodes``
planned episodes, compilation and training included) is timed end to end.

Run: ``python benchmarks/bench_pets_episode.py [--out DIR] [--steps 200] [--quick]``; writes
``DIR/pets_episode.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import statistics
import subprocess
import sys
import time

import jax

from jaxmbrl.agents.pets import PETSConfig, make_pets
from jaxmbrl.experiments import run_pets
from jaxmbrl.models import TrainConfig
from jaxmbrl.reporting import machine_record

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import ROOT, peer_python, write_json


def run_peer(steps: int) -> dict | None:
    python = peer_python()
    if python is None:
        return None
    cmd = [str(python), str(ROOT / "benchmarks" / "peer_mbrl_pets_episode.py"), "--steps"]
    out = subprocess.run([*cmd, str(steps)], capture_output=True, text=True, check=False)
    match = re.search(r"total_s=([\d.]+)", out.stdout)
    if not match:
        return {"error": (out.stdout + out.stderr)[-2000:]}
    return {"total_s": float(match.group(1)), "steps": steps}


def time_episode(config: PETSConfig) -> tuple[list[float], float]:
    """``([seconds of one planned episode], compile seconds)`` after a random episode and a
    model training (so the model is a real one)."""
    pets = make_pets(config)
    state = pets.init(jax.random.key(0))
    state, _ = jax.jit(pets.random_episode)(state)
    state, _ = jax.jit(pets.train_model)(state)
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    episode = jax.jit(pets.planned_episode).lower(state).compile()
    compile_s = time.perf_counter() - t0

    def once() -> float:
        t0 = time.perf_counter()
        jax.block_until_ready(episode(state)[1])
        return time.perf_counter() - t0

    return once, compile_s


def full_run(episodes: int, quick: bool) -> dict:
    """Wall seconds of a whole default PETS run (``experiments.run_pets``, 1 seed): random
    episode, ``episodes`` x (training + planned episode), compilation included."""
    config = PETSConfig(num_episodes=episodes)
    if quick:  # the defaults with a shorter horizon, a smaller population and smaller members
        config = dataclasses.replace(
            config,
            episode_length=20,
            planner=config.planner.replace(horizon=10, num_samples=50),
            model=dataclasses.replace(config.model, hidden_sizes=(64, 64)),
            train=TrainConfig(max_epochs=5),
        )
    t0 = time.perf_counter()
    results = run_pets(config, seeds=1, log=None)
    seconds = time.perf_counter() - t0
    return {
        "config": "PETSConfig() defaults" + (" (quick: smaller)" if quick else ""),
        "env": config.env_name,
        "planned_episodes": episodes,
        "seconds": seconds,
        "seconds_per_planned_episode": seconds / episodes,
        "episode_returns": results["episode_returns"][0],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument(
        "--quick", action="store_true", help="3-step episodes, one dtype, tiny full run"
    )
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"]
    )
    parser.add_argument(
        "--full-run-episodes",
        type=int,
        default=3,
        help="planned episodes of the timed whole default PETS run (0: skip)",
    )
    args = parser.parse_args(argv)
    steps = 3 if args.quick else args.steps
    if args.quick:
        args.dtypes = args.dtypes[:1]
        args.full_run_episodes = min(args.full_run_episodes, 1)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    runners = {}
    report = {"steps": steps, "quick": args.quick, "jaxmbrl": {}, "machine": machine_record()}
    for dtype in args.dtypes:
        config = PETSConfig.preset(
            "mbrl-lib", num_episodes=1, episode_length=steps, planning_matmul_dtype=dtype
        )
        if args.quick:  # a few training epochs: the model's quality does not matter here
            config = dataclasses.replace(
                config, train=dataclasses.replace(config.train, max_epochs=3)
            )
        once, compile_s = time_episode(config)
        runners[dtype] = once
        report["jaxmbrl"][dtype] = {"episode_s": [once()], "compile_s": compile_s}
        print(f"jaxmbrl [{dtype}] episode: {report['jaxmbrl'][dtype]['episode_s'][-1]:.1f} s "
              f"(compile {compile_s:.1f} s)", flush=True)  # fmt: skip
    peer = None if args.no_peer else run_peer(steps)
    report["mbrl_lib"] = peer
    if peer:
        print(f"mbrl-lib episode: {peer}", flush=True)
    for dtype, once in runners.items():
        report["jaxmbrl"][dtype]["episode_s"].append(once())
        r = report["jaxmbrl"][dtype]
        r["episode_median_s"] = statistics.median(r["episode_s"])
        if peer and "total_s" in peer:
            r["speedup_vs_mbrl_lib"] = peer["total_s"] / r["episode_median_s"]
            print(
                f"one {steps}-step PETS episode (mbrl-lib defaults) [{dtype}]: jaxmbrl "
                f"{r['episode_median_s']:.1f} s, mbrl-lib {peer['total_s']:.1f} s -> "
                f"{r['speedup_vs_mbrl_lib']:.2f}x",
                flush=True,
            )
    if args.full_run_episodes > 0:
        report["full_run"] = full_run(args.full_run_episodes, args.quick)
        fr = report["full_run"]
        print(
            f"whole default PETS run ({fr['env']}, {fr['planned_episodes']} planned episodes, "
            f"1 seed): {fr['seconds']:.1f} s, returns {fr['episode_returns']}",
            flush=True,
        )
    write_json(out_dir / "pets_episode.json", report)
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
