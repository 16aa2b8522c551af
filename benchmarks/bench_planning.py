"""Planning speed: the mbrl-lib PETS default planning call, jaxmbrl against mbrl-lib, one run.

The workload is mbrl-lib 0.2.0's PETS default (peers/RESULTS.md sections 1-2): a pendulum
model (obs 3, act 1), a 7-member Gaussian ensemble of 4 x 200 SiLU layers with 5 elites,
20 particles, TS1 propagation, CEM with population 350, 35 elites, 5 iterations, alpha 0.1,
horizon 15: 525,000 imagined transitions per planning call, 244,000 matmul FLOPs each.

For each workload (pop 350, pop 50, pop 2,000) this script measures, in one process run:

* jaxmbrl: one jitted planning call (CEM + particle rollouts + the ensemble), median [min-max]
  seconds over repeats after compilation, transitions/s, GFLOP/s, compile time, and the
  compiled call's temporary memory (XLA's memory analysis);
* mbrl-lib's ``agent.act`` on the same workload, through ``peers/mbrl_lib_plan_bench.py``
  in the peer environment (``peers/setup.sh``), with tuned malloc, run *between* two halves
  of the jaxmbrl repeats so the two share the machine's state; the ratio is
  mbrl-lib median / jaxmbrl median;
* the machine's practical matmul peak: a 4096^2 float32 matmul in XLA (and torch's sgemm in
  the peer environment when it exists), so GFLOP/s can be read as a share of it.

Run: ``python benchmarks/bench_planning.py [--quick] [--out DIR] [--propagation ts1|tsinf]``.
Writes ``DIR/planning.json`` and ``DIR/planning.md``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.envs import make
from jaxmbrl.envs.reward_fns import known_functions
from jaxmbrl.models import ensemble as ens
from jaxmbrl.models import normalizer as norm_lib
from jaxmbrl.planners.cem import CEMConfig, cem
from jaxmbrl.rollouts import RolloutConfig, make_particle_objective

FLOPS_PER_TRANSITION = 244_000  # 2 * (4*200 + 3*200*200 + 200*6), RESULTS.md section 1
ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("JAXMBRL_SHARED", ROOT.parent / "shared"))
PEER_TORCH = pathlib.Path(os.environ.get("PEER_TORCH", "/tmp/peer-torch"))
WORKLOADS = {  # name: (population, elites, mbrl-lib config name)
    "pendulum_cem": (350, 35, "pendulum_cem"),
    "pendulum_cem_pop50": (50, 5, "pendulum_cem_pop50"),
    "pendulum_cem_pop2000": (2000, 200, "pendulum_cem_pop2000"),
}


def median_min_max(xs):
    return statistics.median(xs), min(xs), max(xs)


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        info["cpu"] = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln), "?"
        )
        flags = next((ln for ln in out.splitlines() if ln.startswith("Flags")), "")
        info["amx_bf16"] = "amx_bf16" in flags
        info["avx512_bf16"] = "avx512_bf16" in flags
    except OSError:
        info["cpu"] = platform.processor() or "?"
    info["cores"] = os.cpu_count()
    info["jax"] = jax.__version__
    info["jaxlib"] = jax.lib.__version__ if hasattr(jax.lib, "__version__") else "?"
    info["device"] = str(jax.devices()[0])
    return info


def build_planning_call(population: int, elites: int, propagation: str, matmul_dtype: str):
    """The jitted planning call ``(plan_state, key, obs) -> action`` and its inputs."""
    _, env_params = make("Pendulum-v1")
    reward_fn, _ = known_functions("Pendulum-v1", env_params)
    model_config = ens.EnsembleConfig(
        obs_dim=3,
        action_dim=1,
        num_members=7,
        num_elites=5,
        hidden_sizes=(200, 200, 200, 200),
        activation="silu",
        deterministic=False,
        matmul_dtype=matmul_dtype,
    )
    model = ens.init(model_config, jax.random.key(0))
    # realistic (non-identity) normaliser statistics, as the mbrl-lib script sets
    rng = np.random.default_rng(0)
    fake_x = jnp.asarray(rng.normal(size=(1000, 4)), jnp.float32)
    fake_y = jnp.asarray(rng.normal(size=(1000, 3)), jnp.float32)
    model = model.replace(normalizer=norm_lib.fit(fake_x, fake_y))
    planner = cem(
        CEMConfig(
            horizon=15,
            action_low=(-2.0,),
            action_high=(2.0,),
            num_samples=population,
            num_elites=elites,
            num_iterations=5,
            alpha=0.1,
        )
    )
    rollout = RolloutConfig(num_particles=20, propagation=propagation)

    @functools.partial(jax.jit, donate_argnums=(0,))
    def plan(plan_state, key, model, obs):
        objective = make_particle_objective(
            rollout,
            functools.partial(ens.predict_grouped, model_config, model),
            obs,
            num_members=5,
            reward_fn=reward_fn,
        )
        action, plan_state, _ = planner.plan(plan_state, key, objective)
        return action, planner.shift(plan_state)

    obs = jnp.array([-1.0, 0.0, 0.0], jnp.float32)
    transitions = population * 20 * 15 * 5
    return plan, planner.init, model, obs, transitions


def time_jax(plan, init, model, obs, reps: int) -> list[float]:
    state = init()
    times = []
    for i in range(reps):
        key = jax.random.key(i)
        t0 = time.perf_counter()
        action, state = plan(state, key, model, obs)
        action.block_until_ready()
        times.append(time.perf_counter() - t0)
    return times


def run_mbrl_lib(name: str, quick: bool) -> dict | None:
    """mbrl-lib's ``agent.act`` on workload ``name`` (tuned malloc), or None if unavailable."""
    script = SHARED / "peers" / "mbrl_lib_plan_bench.py"
    python = PEER_TORCH / "bin" / "python"
    if not (script.exists() and python.exists()):
        return None
    cmd = [str(python), str(script), "--tuned-malloc", "--only", name]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    match = re.search(r"sec/call median=([\d.]+) min=([\d.]+) max=([\d.]+) \(n=(\d+)", out.stdout)
    if not match:
        return {"error": (out.stdout + out.stderr)[-2000:]}
    med, lo, hi, n = match.groups()
    return {"median_s": float(med), "min_s": float(lo), "max_s": float(hi), "reps": int(n)}


def matmul_peak(quick: bool) -> dict:
    """Practical fp32 matmul peak: XLA 4096^2 here; torch sgemm in the peer venv if present."""
    n = 2048 if quick else 4096
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    ts = []
    for _ in range(3 if quick else 7):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        ts.append(time.perf_counter() - t0)
    out = {"xla_gflops": 2 * n**3 / statistics.median(ts) / 1e9, "n": n}
    python = PEER_TORCH / "bin" / "python"
    if python.exists():
        reps = 3 if quick else 7
        code = (
            f"import torch,time,statistics;torch.set_num_threads(2);n={n};"
            "a=torch.randn(n,n);a@a;ts=[]\n"
            f"for _ in range({reps}):\n"
            " t=time.perf_counter();a@a;ts.append(time.perf_counter()-t)\n"
            "print(2*n**3/statistics.median(ts)/1e9)"
        )
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 32))
        res = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, env=env, check=False
        )
        try:
            out["torch_gflops"] = float(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out["torch_error"] = res.stderr[-500:]
    out["peak_gflops"] = max(v for k, v in out.items() if k.endswith("_gflops"))
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--propagation", default="ts1", choices=["ts1", "tsinf"])
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(WORKLOADS))
    parser.add_argument("--no-peer", action="store_true", help="skip mbrl-lib")
    parser.add_argument(
        "--matmul-dtype",
        default="float32",
        choices=["float32", "bfloat16"],
        help="model matmul operands (bfloat16: float32 accumulation)",
    )
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    peak = matmul_peak(args.quick)
    print(f"matmul peak (fp32): {peak}")
    rows = []
    for name in args.only or list(WORKLOADS):
        population, elites, peer_name = WORKLOADS[name]
        plan, init, model, obs, transitions = build_planning_call(
            population, elites, args.propagation, args.matmul_dtype
        )
        t0 = time.perf_counter()
        compiled = plan.lower(init(), jax.random.key(0), model, obs).compile()
        compile_s = time.perf_counter() - t0
        mem = compiled.memory_analysis()
        temp_bytes = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
        reps = 2 if args.quick else (5 if population > 1000 else 10)
        time_jax(plan, init, model, obs, 1)  # warm-up outside the timer
        times = time_jax(plan, init, model, obs, reps)
        peer = None if args.no_peer else run_mbrl_lib(peer_name, args.quick)
        times += time_jax(plan, init, model, obs, reps)
        med, lo, hi = median_min_max(times)
        tps = transitions / med
        gflops = tps * FLOPS_PER_TRANSITION / 1e9
        row = {
            "workload": name,
            "propagation": args.propagation,
            "matmul_dtype": args.matmul_dtype,
            "population": population,
            "transitions_per_call": transitions,
            "jax_median_s": med,
            "jax_min_s": lo,
            "jax_max_s": hi,
            "jax_reps": len(times),
            "transitions_per_s": tps,
            "gflops": gflops,
            "percent_of_peak": 100 * gflops / peak["peak_gflops"],
            "compile_s": compile_s,
            "temp_memory_mb": None if temp_bytes is None else temp_bytes / 2**20,
            "mbrl_lib": peer,
        }
        if peer and "median_s" in peer:
            row["speedup_vs_mbrl_lib"] = peer["median_s"] / med
        rows.append(row)
        ratio = row.get("speedup_vs_mbrl_lib")
        peer_txt = (
            f"mbrl-lib {peer['median_s']:.3f} s -> {ratio:.2f}x"
            if ratio
            else "mbrl-lib: not measured"
        )
        print(
            f"{name} ({args.propagation}, {args.matmul_dtype}): "
            f"{med:.3f} s/call [{lo:.3f}-{hi:.3f}], "
            f"{tps:,.0f} transitions/s, {gflops:.0f} GFLOP/s "
            f"({row['percent_of_peak']:.0f}% of peak), compile {compile_s:.1f} s, "
            f"temp memory {row['temp_memory_mb'] or 0:.0f} MiB | {peer_txt}",
            flush=True,
        )

    report = {"machine": machine(), "matmul_peak": peak, "rows": rows, "quick": args.quick}
    stem = "planning" if args.matmul_dtype == "float32" else f"planning_{args.matmul_dtype}"
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2))
    lines = [
        "| workload | prop | matmul | s/call median [min-max] | transitions/s | GFLOP/s | % peak "
        "| compile s | temp MiB | mbrl-lib s/call | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peer = r["mbrl_lib"] or {}
        peer_s = (
            f"{peer['median_s']:.3f} [{peer['min_s']:.3f}-{peer['max_s']:.3f}]"
            if "median_s" in peer
            else "n/a"
        )
        speed = f"{r['speedup_vs_mbrl_lib']:.2f}x" if "speedup_vs_mbrl_lib" in r else "n/a"
        lines.append(
            f"| {r['workload']} | {r['propagation']} | {r['matmul_dtype']} | "
            f"{r['jax_median_s']:.3f} "
            f"[{r['jax_min_s']:.3f}-{r['jax_max_s']:.3f}] | {r['transitions_per_s']:,.0f} | "
            f"{r['gflops']:.0f} | {r['percent_of_peak']:.0f} | {r['compile_s']:.1f} | "
            f"{(r['temp_memory_mb'] or 0):.0f} | {peer_s} | {speed} |"
        )
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out_dir / f'{stem}.json'} and {out_dir / f'{stem}.md'}")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
