#!/usr/bin/env python
"""Model-training throughput: jaxmbrl against mbrl-lib, side by side in one run.

Both train the mbrl-lib PETS default model (7 members, 4 x 200 SiLU, Gaussian head; obs 3,
action 1) on the same random-action Pendulum-v1 transitions (gymnax ``step_env``): Adam,
lr 7.5e-4, weight decay 3e-5, batch 256, bootstrap resamples, 20 % validation evaluated
after every epoch, no early stopping. Throughput is **samples/s** = training rows x epochs /
seconds (one sample = one row through every member's forward and backward pass).

jaxmbrl is timed after compilation (one compiled ``train`` call of ``--epochs`` epochs per
repeat, blocked on); mbrl-lib (``benchmarks/peer_mbrl_training.py``, run with the peer
environment's python, ``PEER_TORCH``, and tuned malloc) after a warm-up epoch. Order: half
the jaxmbrl repeats, mbrl-lib, the other half, so drift on the shared machine hits both.
Results are median [min-max]; only the same-run ratio is meaningful across machines.

  .venv/bin/python benchmarks/bench_training.py --out bench_out [--quick] [--grouped]

``--grouped`` also times :func:`jaxmbrl.models.predict_grouped`'s two implementations (one
dot chain per elite, unrolled at trace time, against one batched dot over the gathered
members) on one imagined PETS step (5 elites x 1,400 rows).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import models
from jaxmbrl.envs import flatten, make, random_episodes
from jaxmbrl.models import ensemble

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine, stats, write_json  # noqa: E402


def pendulum_transitions(key, n: int, steps: int = 200):
    """``n`` random-action Pendulum-v1 transitions (``n / steps`` episodes from reset)."""
    env, params = make("Pendulum-v1")
    episodes = -(-n // steps)
    data = jax.jit(lambda k: random_episodes(env, params, k, episodes, steps))(key)
    return tuple(np.asarray(x[:n]) for x in tuple(flatten(data))[:4])


def time_jax(config, tc, state, data, repeats: int, seed: int) -> list[float]:
    times = []
    for i in range(repeats):
        key = jax.random.key(seed + i)
        t0 = time.perf_counter()
        out = models.train(config, tc, key, state, *data)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
    return times


def run_peer(python: str, data_path: pathlib.Path, epochs: int, repeats: int) -> dict:
    cmd = [
        python,
        str(HERE / "peer_mbrl_training.py"),
        "--data",
        str(data_path),
        "--epochs",
        str(epochs),
        "--repeats",
        str(repeats),
        "--tuned-malloc",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"status": "failed", "returncode": proc.returncode, "stderr": proc.stderr[-2000:]}
    return {"status": "ok", "command": " ".join(cmd), **json.loads(lines[-1][len("RESULT ") :])}


def bench_grouped(repeats: int) -> dict:
    """Time predict_grouped's two implementations on 5 elites x 1,400 rows (alternating)."""
    config = models.EnsembleConfig(obs_dim=3, action_dim=1)
    state = models.init(config, jax.random.key(0))
    k, r = config.num_elites, 1400
    x = jax.random.normal(jax.random.key(1), (k, r, config.input_dim))
    impls = {
        "per_member_loop": ensemble._grouped_normalized,
        "batched_gather": ensemble._grouped_normalized_batched,
    }
    fns = {name: jax.jit(lambda p, e, x, f=f: f(config, p, e, x)[0]) for name, f in impls.items()}
    for f in fns.values():
        jax.block_until_ready(f(state.params, state.elite_idx, x))
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, f in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(state.params, state.elite_idx, x))
            times[name].append(time.perf_counter() - t0)
    return {
        name: {
            "ms": stats([t * 1e3 for t in ts]),
            "rows_per_s_median": k * r / statistics.median(ts),
        }
        for name, ts in times.items()
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_out", help="directory for the JSON result")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed call")
    parser.add_argument("--repeats", type=int, default=4, help="timed repeats per library")
    parser.add_argument("--transitions", type=int, default=10_000)
    parser.add_argument(
        "--peer-python",
        default=os.path.join(os.environ.get("PEER_TORCH", "/tmp/peer-torch"), "bin", "python"),
        help="python of the peer environment (PEER_TORCH, default /tmp/peer-torch)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip mbrl-lib")
    parser.add_argument("--grouped", action="store_true", help="also time predict_grouped")
    return parser


def peer_result(args: argparse.Namespace, data_path: pathlib.Path) -> dict:
    """mbrl-lib's result: run it, or say why it was skipped (printed)."""
    if args.no_peer:
        return {"status": "skipped (--no-peer)"}
    if os.path.exists(args.peer_python):
        print("mbrl-lib: running", args.peer_python)
        return run_peer(args.peer_python, data_path, args.epochs, args.repeats)
    peer = {
        "status": f"peer environment missing: {args.peer_python} not found (the "
        "peer environment: mbrl-lib 0.2.0 and torch in PEER_TORCH, default "
        "/tmp/peer-torch)"
    }
    print("mbrl-lib:", peer["status"])
    return peer


def report_throughput(result: dict, jax_sps: list[float], peer: dict) -> None:
    """Print the samples/s lines; add the jaxmbrl / mbrl-lib ratio when mbrl-lib ran."""
    line = f"jaxmbrl  {stats(jax_sps)['median']:,.0f} [{min(jax_sps):,.0f}-{max(jax_sps):,.0f}]"
    print(line + " samples/s")
    if peer.get("status") == "ok":
        ps = peer["samples_per_s"]
        med = peer["samples_per_s_median"]
        print(f"mbrl-lib {med:,.0f} [{min(ps):,.0f}-{max(ps):,.0f}] samples/s")
        result["ratio_jaxmbrl_over_mbrl_lib"] = (
            stats(jax_sps)["median"] / peer["samples_per_s_median"]
        )
        print(f"ratio (median/median) {result['ratio_jaxmbrl_over_mbrl_lib']:.2f}x")


def report_grouped(result: dict, quick: bool) -> None:
    """Time predict_grouped's implementations into ``result`` and print them."""
    result["predict_grouped"] = bench_grouped(10 if quick else 30)
    for name, r in result["predict_grouped"].items():
        print(
            f"predict_grouped {name}: {r['ms']['median']:.2f} ms "
            f"[{r['ms']['min']:.2f}-{r['ms']['max']:.2f}]"
        )


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.transitions = 1, 2, 2000
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    config = models.EnsembleConfig(obs_dim=3, action_dim=1)  # mbrl-lib PETS default
    tc = models.TrainConfig(
        max_epochs=args.epochs, patience=args.epochs + 1, validation_ratio=0.2, batch_size=256
    )
    data = pendulum_transitions(jax.random.key(0), args.transitions)
    data_path = out_dir / "pendulum_transitions.npz"
    np.savez(data_path, obs=data[0], action=data[1], next_obs=data[2], reward=data[3])
    jdata = tuple(jnp.asarray(x) for x in data[:3])

    t0 = time.perf_counter()
    state, log = models.train(config, tc, jax.random.key(1), None, *jdata)
    jax.block_until_ready(state)
    first_call = time.perf_counter() - t0
    assert int(log.num_epochs) == args.epochs
    n_train = int(log.num_train)
    print(f"jaxmbrl: first call (compile + run) {first_call:.2f}s, train rows {n_train}")
    # The timed calls continue from a state (not None): a different pytree, so warm that up.
    jax.block_until_ready(models.train(config, tc, jax.random.key(2), state, *jdata))

    half = max(1, args.repeats // 2)
    jax_times = time_jax(config, tc, state, jdata, half, seed=10)
    peer = peer_result(args, data_path)
    jax_times += time_jax(config, tc, state, jdata, args.repeats - half, seed=100)
    jax_sps = [n_train * args.epochs / t for t in jax_times]

    result = {
        "benchmark": "model training throughput (samples/s = train rows x epochs / s)",
        "machine": machine(),
        "quick": args.quick,
        "config": {
            "model": config.to_dict(),
            "train": {k: getattr(tc, k) for k in tc.__dataclass_fields__},
            "transitions": args.transitions,
            "num_train": n_train,
            "num_val": int(log.num_val),
            "epochs_per_call": args.epochs,
        },
        "jaxmbrl": {
            "first_call_s": first_call,
            "seconds": jax_times,
            "samples_per_s": stats(jax_sps),
        },
        "mbrl_lib": peer,
    }
    report_throughput(result, jax_sps, peer)
    if args.grouped:
        report_grouped(result, args.quick)
    write_json(out_dir / "bench_training.json", result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
