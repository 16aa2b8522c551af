"""One 200-step PETS episode with mbrl-lib's exact defaults: jaxmbrl against mbrl-lib, one run.

jaxmbrl runs ``PETSConfig.preset("mbrl-lib")`` on Pendulum-v1 (7-member Gaussian ensemble
4 x 200 SiLU, 5 elites, 20 particles, TS1, CEM population 350 / 35 elites / 5 iterations,
horizon 15): a random episode and a model training first (so the model is a real one), then
the planned episode -- 200 planning calls in one compiled ``lax.scan`` -- is timed after
compilation. mbrl-lib's ``agent.act`` runs the same 200-step episode in its own environment
(``benchmarks/peer_mbrl_pets_episode.py`` in ``$PEER_TORCH``, tuned malloc), between two
jaxmbrl repeats, so both see the machine in the same state.

Run: ``python benchmarks/bench_pets_episode.py [--out DIR] [--steps 200]``; writes
``DIR/pets_episode.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import jax

from jaxmbrl.agents.pets import PETSConfig, make_pets, versions

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEER_TORCH = pathlib.Path(os.environ.get("PEER_TORCH", "/tmp/peer-torch"))


def run_peer(steps: int) -> dict | None:
    python = PEER_TORCH / "bin" / "python"
    if not python.exists():
        return None
    cmd = [str(python), str(ROOT / "benchmarks" / "peer_mbrl_pets_episode.py"), "--steps"]
    out = subprocess.run([*cmd, str(steps)], capture_output=True, text=True, check=False)
    match = re.search(r"total_s=([\d.]+)", out.stdout)
    if not match:
        return {"error": (out.stdout + out.stderr)[-2000:]}
    return {"total_s": float(match.group(1)), "steps": steps}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument(
        "--repeat-after-peer",
        action="store_true",
        help="time jaxmbrl's episode again after mbrl-lib's (a second sample, +1 episode)",
    )
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    config = PETSConfig.preset("mbrl-lib", num_episodes=1, episode_length=args.steps)
    pets = make_pets(config)
    state = pets.init(jax.random.key(0))
    state, _ = jax.jit(pets.random_episode)(state)
    state, _ = jax.jit(pets.train_model)(state)
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    episode = jax.jit(pets.planned_episode).lower(state).compile()
    compile_s = time.perf_counter() - t0

    def time_episode() -> float:
        t0 = time.perf_counter()
        _, stats = episode(state)
        jax.block_until_ready(stats)
        return time.perf_counter() - t0

    jax_times = [time_episode()]
    print(f"jaxmbrl episode: {jax_times[-1]:.1f} s (compile {compile_s:.1f} s)", flush=True)
    peer = None if args.no_peer else run_peer(args.steps)
    if peer:
        print(f"mbrl-lib episode: {peer}", flush=True)
    if args.repeat_after_peer:
        jax_times.append(time_episode())
        print(f"jaxmbrl episode: {jax_times[-1]:.1f} s", flush=True)
    jax_s = min(jax_times)
    report = {
        "steps": args.steps,
        "jaxmbrl_episode_s": jax_times,
        "jaxmbrl_compile_s": compile_s,
        "mbrl_lib": peer,
        "versions": versions(),
    }
    if peer and "total_s" in peer:
        report["speedup"] = peer["total_s"] / jax_s
        print(
            f"one {args.steps}-step PETS episode (mbrl-lib defaults): jaxmbrl {jax_s:.1f} s, "
            f"mbrl-lib {peer['total_s']:.1f} s -> {report['speedup']:.2f}x"
        )
    (out_dir / "pets_episode.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
