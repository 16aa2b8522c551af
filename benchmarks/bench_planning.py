#!/usr/bin/env python
"""Planner throughput on the peer workloads, jaxmbrl against mbrl-lib in the same run.

The workloads are mbrl-lib 0.2.0's PETS defaults (read from its installed configs): a
7-member Gaussian ensemble of 4 x 200 SiLU layers with 5 elites propagating, 20 particles,
TS1 propagation (mbrl-lib's ``random_model``), and

| workload | model | planner | population | elites | iterations | horizon |
|---|---|---|---|---|---|---|
| pendulum_cem | pendulum (obs 3, a in [-2, 2]) | CEM | 350 | 35 | 5 | 15 |
| pendulum_cem_pop50 / _pop2000 | pendulum | CEM | 50 / 2,000 | 5 / 200 | 5 | 15 |
| cartpole_cem | continuous cartpole (obs 4, a in [-1, 1]), termination | CEM | 350 | 35 | 5 | 15 |
| inv_pendulum_cem | inverted pendulum (obs 4, a in [-3, 3]), learned reward | CEM | 480 | 38
| 5 | 45 |
| pendulum_icem / cartpole_icem | as above | iCEM (decay 1.3, beta 2) | 200 | 20 | 5 | 10 |
| pendulum_mppi | pendulum | MPPI (gamma 0.9, sigma 1, beta 0.9) | 350 | - | 5 | 30 |

For each workload, in one process: one jitted planning call (planner + particle rollouts +
ensemble, plan state donated) per matmul precision (float32, and bfloat16 operands with
float32 accumulation), median [min-max] seconds over repeats after compilation, imagined
transitions/s, GFLOP/s (matmul FLOPs of the member MLP), percent of the machine's practical
matmul peak measured in the same run, compile seconds and XLA's temporary memory of the
compiled call; and mbrl-lib's ``agent.act`` on the same workload (timed by the peers'
planning script, ``mbrl_lib_plan_bench.py`` in ``$JAXMBRL_SHARED/peers``, in the peer
environment ``PEER_TORCH`` with glibc's malloc tuned so that multi-MB temporaries are not
mmap'ed and page-faulted on every op; skipped when either is missing), run *between* the two
halves of the jaxmbrl repeats so both see the machine in the same state. The speed-up is
mbrl-lib's median seconds per call over jaxmbrl's (the same planning task; iCEM scores 667
candidates per call here and 680 in mbrl-lib, whose populations are rounded to multiples of
the ensemble size).

Run: ``python benchmarks/bench_planning.py [--quick] [--out DIR] [--only NAME ...]
[--dtypes float32 bfloat16] [--propagation ts1] [--no-peer]``; writes ``DIR/planning.json``
and ``DIR/planning.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import (
    SHARED,
    TUNED_MALLOC,
    compile_stats,
    fmt,
    machine,
    matmul_peak,
    peer_python,
    stats,
    timed,
    write_json,
)

from jaxmbrl import onednn
from jaxmbrl.envs import make
from jaxmbrl.envs.reward_fns import known_functions
from jaxmbrl.models import ensemble as ens
from jaxmbrl.models import normalizer as norm_lib
from jaxmbrl.planners import MBRL_LIB_OPTIONS, CEMConfig, ICEMConfig, MPPIConfig, cem, icem, mppi
from jaxmbrl.rollouts import RolloutConfig, make_particle_objective

HIDDEN, LAYERS, MEMBERS, ELITE_MEMBERS, PARTICLES = 200, 4, 7, 5, 20


@dataclasses.dataclass(frozen=True)
class Workload:
    env: str
    planner: str
    population: int
    elites: int | None
    iterations: int
    alpha: float | None
    horizon: int


WORKLOADS = {
    "pendulum_cem": Workload("pendulum", "cem", 350, 35, 5, 0.1, 15),
    "pendulum_cem_pop50": Workload("pendulum", "cem", 50, 5, 5, 0.1, 15),
    "pendulum_cem_pop2000": Workload("pendulum", "cem", 2000, 200, 5, 0.1, 15),
    "cartpole_cem": Workload("cartpole", "cem", 350, 35, 5, 0.1, 15),
    "inv_pendulum_cem": Workload("inv_pendulum", "cem", 480, 38, 5, 0.134484, 45),
    "pendulum_icem": Workload("pendulum", "icem", 200, 20, 5, 0.1, 10),
    "cartpole_icem": Workload("cartpole", "icem", 200, 20, 5, 0.1, 10),
    "pendulum_mppi": Workload("pendulum", "mppi", 350, None, 5, None, 30),
}
QUICK_WORKLOADS = ("pendulum_cem_pop50",)

_X_THRESHOLD, _THETA_THRESHOLD = 2.4, 12 * 2 * np.pi / 360


def cartpole_termination(obs, action, next_obs):
    """mbrl-lib's ``termination_fns.cartpole``: cart beyond 2.4 or pole beyond 12 degrees."""
    del obs, action
    x, theta = next_obs[0], next_obs[2]
    return (jnp.abs(x) > _X_THRESHOLD) | (jnp.abs(theta) > _THETA_THRESHOLD)


def cartpole_reward(obs, action, next_obs):
    """mbrl-lib's ``reward_fns.cartpole``: 1 while not terminated."""
    return 1.0 - cartpole_termination(obs, action, next_obs).astype(jnp.float32)


def inv_pendulum_termination(obs, action, next_obs):
    """mbrl-lib's ``termination_fns.inverted_pendulum``: non-finite or |angle| > 0.2."""
    del obs, action
    return ~jnp.all(jnp.isfinite(next_obs)) | (jnp.abs(next_obs[1]) > 0.2)


def env_spec(name: str) -> dict:
    """Observation size, action bounds, reward/termination functions and start observation."""
    if name == "pendulum":
        _, params = make("Pendulum-v1")
        reward_fn, _ = known_functions("Pendulum-v1", params)
        return dict(obs_dim=3, bound=2.0, reward_fn=reward_fn, termination_fn=None,
                    obs0=[-1.0, 0.0, 0.0])  # fmt: skip
    if name == "cartpole":
        return dict(obs_dim=4, bound=1.0, reward_fn=cartpole_reward,
                    termination_fn=cartpole_termination, obs0=[0.0, 0.0, 0.02, 0.0])  # fmt: skip
    if name == "inv_pendulum":  # learned reward: the model predicts obs + 1 outputs
        return dict(obs_dim=4, bound=3.0, reward_fn=None, termination_fn=inv_pendulum_termination,
                    obs0=[0.0, 0.01, 0.0, 0.0])  # fmt: skip
    raise ValueError(f"unknown benchmark environment {name!r}")


def flops_per_transition(obs_dim: int, learned_reward: bool) -> int:
    """Matmul FLOPs of one member for one row: ``2 * (in*h + (L-1)*h*h + h*2Y)``."""
    out = obs_dim + int(learned_reward)
    return 2 * ((obs_dim + 1) * HIDDEN + (LAYERS - 1) * HIDDEN * HIDDEN + HIDDEN * 2 * out)


def make_planner(w: Workload, bound: float):
    bounds = dict(horizon=w.horizon, action_low=(-bound,), action_high=(bound,))
    if w.planner == "cem":
        # mbrl-lib's own CEM (truncated sampling, initial std (high - low) / 4, restarted at
        # every call) with the workload's smoothing: the planning task the peer times.
        config = CEMConfig(**bounds, num_samples=w.population, num_elites=w.elites,
                           num_iterations=w.iterations, return_mean_elites=True,
                           **{**MBRL_LIB_OPTIONS, "alpha": w.alpha})  # fmt: skip
        return cem(config), w.population * w.iterations
    if w.planner == "icem":
        config = ICEMConfig(**bounds, num_samples=w.population, num_elites=w.elites,
                            num_iterations=w.iterations, alpha=w.alpha,
                            return_mean_elites=True)  # fmt: skip
        return icem(config), config.candidates_per_call()
    if w.planner == "mppi":
        config = MPPIConfig(**bounds, num_samples=w.population, num_iterations=w.iterations)
        return mppi(config), w.population * w.iterations
    raise ValueError(w.planner)


def build(name: str, matmul_dtype: str, propagation: str = "ts1", dense: str = "auto"):
    """``(plan, init, args, info)``: the jitted call ``plan(plan_state, key, model, obs) ->
    (action [A], plan_state)``, a zero-argument ``init`` for the plan state, the remaining
    arguments, and ``{"transitions_per_call", "flops_per_transition", "dense_library"}``
    (``dense``: the ensemble's ``dense_library``; the record names what it resolved to)."""
    w = WORKLOADS[name]
    spec = env_spec(w.env)
    learned = spec["reward_fn"] is None
    config = ens.EnsembleConfig(
        obs_dim=spec["obs_dim"], action_dim=1, num_members=MEMBERS, num_elites=ELITE_MEMBERS,
        hidden_sizes=(HIDDEN,) * LAYERS, activation="silu", deterministic=False,
        learn_reward=learned, matmul_dtype=matmul_dtype, dense_library=dense,
    )  # fmt: skip
    model = ens.init(config, jax.random.key(0))
    # realistic (non-identity) normaliser statistics, as the mbrl-lib script sets
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(1000, spec["obs_dim"] + 1)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(1000, spec["obs_dim"] + int(learned))), jnp.float32)
    model = model.replace(normalizer=norm_lib.fit(x, y))
    planner, candidates = make_planner(w, spec["bound"])
    rollout = RolloutConfig(num_particles=PARTICLES, propagation=propagation)

    @functools.partial(jax.jit, donate_argnums=(0,))
    def plan(plan_state, key, model, obs):
        objective = make_particle_objective(
            rollout,
            functools.partial(ens.predict_grouped, config, model),
            obs,
            num_members=ELITE_MEMBERS,
            reward_fn=spec["reward_fn"],
            termination_fn=spec["termination_fn"],
        )
        action, plan_state, _ = planner.plan(plan_state, key, objective)
        return action, planner.shift(plan_state)

    obs = jnp.asarray(spec["obs0"], jnp.float32)
    info = {
        "transitions_per_call": candidates * PARTICLES * w.horizon,
        "flops_per_transition": flops_per_transition(spec["obs_dim"], learned),
        "dense_library": onednn.resolve(dense, matmul_dtype),
    }
    return plan, planner.init, (model, obs), info


class Runner:
    """Times one compiled planning call, carrying the plan state between calls (as MPC)."""

    def __init__(self, name: str, matmul_dtype: str, propagation: str, dense: str = "auto"):
        self.plan, init, self.args, self.info = build(name, matmul_dtype, propagation, dense)
        self.state = init()
        # the compiled program, kept for its text (trace_planning_call.py reads it)
        self.compiled, self.compile_s, self.temp_mib = compile_stats(
            self.plan, init(), jax.random.key(0), *self.args
        )
        self.calls = 0
        self.times: list[float] = []
        self.run(1, record=False)  # warm-up outside the timer

    def _call(self):
        self.calls += 1
        action, self.state = self.plan(self.state, jax.random.key(self.calls), *self.args)
        return action

    def run(self, reps: int, record: bool = True) -> None:
        times = timed(self._call, reps)
        if record:
            self.times += times


def run_mbrl_lib(name: str, quick: bool) -> dict | None:
    """mbrl-lib's ``agent.act`` on workload ``name`` (tuned malloc); ``None`` without the
    peer environment or the peers' planning script."""
    script = SHARED / "peers" / "mbrl_lib_plan_bench.py"
    python = peer_python()
    if python is None or not script.exists():
        return None
    cmd = [str(python), str(script), "--tuned-malloc", "--only", name]
    if quick:
        cmd.append("--quick")
    env = dict(os.environ, **TUNED_MALLOC)
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    match = re.search(r"sec/call median=([\d.]+) min=([\d.]+) max=([\d.]+) \(n=(\d+)", out.stdout)
    if not match:
        return {"error": (out.stdout + out.stderr)[-2000:]}
    med, lo, hi, n = match.groups()
    transitions = re.search(r"transitions/call=(\d+)", out.stdout)
    return {
        "seconds": {"median": float(med), "min": float(lo), "max": float(hi), "n": int(n)},
        "transitions_per_call": int(transitions.group(1)) if transitions else None,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--quick", action="store_true", help="one small workload, 2 repeats")
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(WORKLOADS))
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"]
    )
    parser.add_argument("--propagation", default="ts1", choices=["ts1", "tsinf"])
    parser.add_argument("--no-peer", action="store_true", help="skip mbrl-lib")
    parser.add_argument(
        "--dense", nargs="+", default=["auto"], choices=list(onednn.LIBRARIES),
        help="the ensemble's dense_library; several are timed in one run, interleaved, "
        "their results keyed 'DTYPE+LIBRARY'",
    )  # fmt: skip
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out)
    names = args.only or (list(QUICK_WORKLOADS) if args.quick else list(WORKLOADS))

    peak = matmul_peak(args.quick)
    print(f"matmul peak: {peak}", flush=True)
    rows = []
    for name in names:
        w = WORKLOADS[name]
        heavy = w.population * w.horizon >= 20_000
        half = 1 if args.quick else (3 if heavy else 5)
        runners = {
            (d if len(args.dense) == 1 else f"{d}+{lib}"): Runner(name, d, args.propagation, lib)
            for d in args.dtypes
            for lib in args.dense
        }
        for r in runners.values():
            r.run(half)
        peer = None if args.no_peer else run_mbrl_lib(name, args.quick)
        for r in runners.values():
            r.run(half)
        row = {"workload": name, **dataclasses.asdict(w), "propagation": args.propagation,
               "particles": PARTICLES, "mbrl_lib": peer, "jaxmbrl": {}}  # fmt: skip
        peer_s = peer["seconds"]["median"] if peer and "seconds" in peer else None
        for dtype, r in runners.items():
            s = stats(r.times)
            tps = r.info["transitions_per_call"] / s["median"]
            gflops = tps * r.info["flops_per_transition"] / 1e9
            row["jaxmbrl"][dtype] = {
                "seconds": s,
                **r.info,
                "transitions_per_s": tps,
                "gflops": gflops,
                "percent_of_peak": 100 * gflops / peak["peak_gflops"],
                "compile_s": r.compile_s,
                "temp_memory_mib": r.temp_mib,
                "speedup_vs_mbrl_lib": None if peer_s is None else peer_s / s["median"],
            }
            ratio = row["jaxmbrl"][dtype]["speedup_vs_mbrl_lib"]
            print(
                f"{name} [{dtype}]: {fmt(s)} s/call, {tps:,.0f} transitions/s, "
                f"{gflops:.0f} GFLOP/s ({100 * gflops / peak['peak_gflops']:.0f}% of peak), "
                f"compile {r.compile_s:.1f} s"
                + (f" | mbrl-lib {peer_s:.3f} s -> {ratio:.2f}x" if ratio else ""),
                flush=True,
            )
        rows.append(row)
        del runners

    report = {
        "benchmark": "planning",
        "machine": machine(),
        "matmul_peak": peak,
        "quick": args.quick,
        "rows": rows,
    }
    write_json(out_dir / "planning.json", report)
    md = markdown(report)
    (out_dir / "planning.md").write_text(md)
    print(md)
    return report


def markdown(report: dict) -> str:
    dtypes = list(report["rows"][0]["jaxmbrl"]) if report["rows"] else []
    head = ["workload", "planner", "transitions/call (jaxmbrl / mbrl-lib)"]
    head += [f"{d} s/call" for d in dtypes] + ["mbrl-lib s/call"]
    head += [f"speed-up {d}" for d in dtypes]
    head += [f"{d} GFLOP/s (% peak)" for d in dtypes] + ["compile s", "temp MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report["rows"]:
        peer = row["mbrl_lib"] or {}
        jx = row["jaxmbrl"]
        first = jx[dtypes[0]]
        cells = [
            row["workload"],
            row["planner"],
            f"{first['transitions_per_call']:,} / "
            + (f"{peer['transitions_per_call']:,}" if peer.get("transitions_per_call") else "n/a"),
        ]
        cells += [fmt(jx[d]["seconds"]) for d in dtypes] + [fmt(peer.get("seconds"))]
        cells += [
            f"**{jx[d]['speedup_vs_mbrl_lib']:.2f}x**" if jx[d]["speedup_vs_mbrl_lib"] else "n/a"
            for d in dtypes
        ]
        cells += [f"{jx[d]['gflops']:.0f} ({jx[d]['percent_of_peak']:.0f} %)" for d in dtypes]
        cells += [
            " / ".join(f"{jx[d]['compile_s']:.1f}" for d in dtypes),
            " / ".join(f"{jx[d]['temp_memory_mib'] or 0:.0f}" for d in dtypes),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    peak = report["matmul_peak"]
    lines.append("")
    lines.append(
        f"Matmul peak (fp32, {peak['n']}^2): XLA {peak['xla_gflops']:.0f} GFLOP/s"
        + (f", torch {peak['torch_gflops']:.0f} GFLOP/s" if "torch_gflops" in peak else "")
        + f"; % peak uses {peak['peak_gflops']:.0f}. Machine: {report['machine']['cpu']}, "
        f"{report['machine']['cores']} cores, jax {report['machine']['jax']}."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
