#!/usr/bin/env python
"""One-GPU check of the issue-15 targets: planning rate, a PETS episode, true-env rollouts.

Three phases, each in its own process (a fresh device, so ``memory_stats()``'s peak belongs
to that phase, and a phase that hangs is killed at its time limit without losing the others):

1. ``planning``: one jitted planning call of the mbrl-lib PETS workload
   (``PETSConfig.preset("mbrl-lib")``: 7 members of 4 x 200 SiLU Gaussian, 5 elites, 20
   particles TS1, CEM horizon 15, 5 iterations, 10 % elites, Pendulum-v1, the agent's own
   objective) at growing populations N, float32 and bfloat16 (``planning_matmul_dtype``;
   one process per precision). Per N: compile seconds, median [min-max] seconds per call
   after a warm-up, imagined transitions/s (``N x iterations x particles x horizon`` per
   call), achieved TFLOP/s of the member MLP, XLA's temporary memory for the call and the
   device's peak bytes in use (``memory_stats()``, where the backend exposes it). Growth
   stops at the first N that runs out of memory, errors, exceeds the per-size time budget,
   or whose projected time does not fit the phase's remaining budget; that N is recorded
   with its reason and the larger ones are not tried.
2. ``episode``: one 200-step PETS episode (mbrl-lib preset, Pendulum-v1, float32) -- after a
   random episode and a model training -- timed after compilation (median of the runs that
   fit the budget, with the episode returns).
3. ``rollouts``: gymnax Pendulum-v1 under ``jit(vmap(lax.scan))``, ``env.step_env`` (pure
   dynamics) and ``env.step`` (with auto-reset), B in 4096 / 16384 / 65536, 200 steps,
   env-steps/s.

FLOPs per transition: one member forward for one row, ``2 * sum(in * out)`` over its dense
layers, input ``O + A``, output ``2 * O`` (Gaussian mean and log-variance); for Pendulum-v1
(O 3, A 1) ``2 * (4*200 + 3*200*200 + 200*6) = 244,000``, so the issue's target of 300 M
transitions/s is 73.2 TFLOP/s. Activations, sampling, rewards and the CEM update are not
counted. The float32 rows use XLA's default matmul precision, which is TF32 on the tensor
cores of A100/H100-class GPUs (recorded as ``jax_default_matmul_precision``).

Nothing is written that was not measured: without a GPU (``jax.default_backend() != "gpu"``)
the check prints ``no GPU: nothing measured``, what is needed, and exits 3 with no JSON.
``--cpu-smoke`` runs the same code at tiny sizes on whatever backend there is (the JSON then
says ``mode: cpu-smoke`` and names the backend). The JSON (``OUT/gpu_check.json``, strict
JSON via :func:`jaxmbrl.reporting.write_json`) is rewritten after every phase, with
``complete: false`` until the last one ends.

Run: ``bash benchmarks/gpu_check.sh [--out DIR] [--cpu-smoke] [--total-budget S]`` (the
shell script picks a Python whose jax sees the GPU; see its header), or this file with the
same flags. Exit codes: 0 all phases ran, 1 a phase failed or was killed, 3 no GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ENV_NAME = "Pendulum-v1"
OBS0 = (-1.0, 0.0, 0.0)  # Pendulum-v1 hanging down at rest: [cos, sin, theta_dot]
TARGET_TRANSITIONS_PER_S = 300e6
FLOPS_FORMULA = (
    "2 * sum(in * out) over the member MLP's dense layers (forward only), input O + A, "
    "output 2 * O (Gaussian mean and log-variance)"
)
NO_GPU_EXIT = 3
GPU_BACKENDS = ("gpu", "cuda")  # jax.default_backend() names CUDA devices "gpu"
MEMORY_NOTE = (
    "memory.peak_mib_in_use is the phase process's peak since it started (populations "
    "ascend; on the GPU each precision has its own process), so it bounds the row's own peak "
    "from above; xla_temp_mib is XLA's temporary buffer of the compiled call alone; memory "
    "is null where the backend exposes no memory_stats() (CPU)"
)
XLA_ENV = ("XLA_FLAGS", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_PREALLOCATE")
NEEDS = """\
needs: a jax whose default backend is 'gpu', plus gymnax, gymnasium and the jaxmbrl tree:
  * with network: .venv/bin/pip install -c constraints.txt "jax[cuda12]==0.10.2"
    (the pinned jax; or `.venv/bin/pip install -c constraints.txt -e ".[cuda]"`)
  * on the lent GPU machine (no network; .venv is ~1 GB and cannot travel): its python3
    has jax with the CUDA plugin; bring gymnax, gymnasium and farama-notifications as
    wheels: here `echo /.gpu_wheels/ >> .git/info/exclude; bash benchmarks/gpu_check.sh
    --prepare-wheels`, then carry [".gpu_wheels"] and run `bash benchmarks/gpu_check.sh`
    (it installs them into /tmp and sets PYTHONPATH)"""


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The sizes and budgets of one run (GPU or CPU smoke)."""

    populations: tuple[int, ...]
    size_budget_s: float  # compile + warm-up + timed calls of one population
    max_reps: int  # timed calls per population (fewer when the size budget is short)
    episode_population: int  # CEM population of the timed episode (350: the preset's)
    episode_steps: int
    episode_train_epochs: int | None  # None: the preset's
    max_episode_runs: int
    rollout_batches: tuple[int, ...]
    rollout_horizon: int
    total_budget_s: float
    grace_s: float  # a phase process is killed this long after its soft budget


GPU = Sizes(
    populations=(350, 1000, 5000, 20000, 100000),
    size_budget_s=35.0,
    max_reps=10,
    episode_population=350,
    episode_steps=200,
    episode_train_epochs=None,
    max_episode_runs=3,
    rollout_batches=(4096, 16384, 65536),
    rollout_horizon=200,
    total_budget_s=450.0,
    grace_s=20.0,
)
SMOKE = Sizes(
    populations=(16, 100000),  # the second is skipped by the projection: that path runs too
    size_budget_s=15.0,
    max_reps=3,
    episode_population=16,
    episode_steps=5,
    episode_train_epochs=2,
    max_episode_runs=2,
    rollout_batches=(64,),
    rollout_horizon=50,
    total_budget_s=55.0,
    grace_s=30.0,
)
# (phase name, child phase, planning dtypes, share of the total budget)
GPU_PHASES = (
    ("planning_float32", "planning", ("float32",), 0.30),
    ("planning_bfloat16", "planning", ("bfloat16",), 0.27),
    ("episode", "episode", ("float32",), 0.25),
    ("rollouts", "rollouts", (), 0.12),
)
SMOKE_PHASES = (
    ("planning", "planning", ("float32", "bfloat16"), 0.45),
    ("episode", "episode", ("float32",), 0.35),
    ("rollouts", "rollouts", (), 0.15),
)


# ---------------------------------------------------------------- phases (child processes)


def flops_per_transition(model_config) -> int:
    """:data:`FLOPS_FORMULA` for an ``EnsembleConfig``."""
    out = model_config.obs_dim + int(model_config.learn_reward)
    out *= 1 if model_config.deterministic else 2
    sizes = (model_config.obs_dim + model_config.action_dim, *model_config.hidden_sizes, out)
    return 2 * sum(a * b for a, b in itertools.pairwise(sizes))


def pets_config(population: int, dtype: str, **overrides):
    """The mbrl-lib preset with CEM population ``population`` (10 % elites, as the preset)."""
    from jaxmbrl.agents.pets import PETSConfig

    base = PETSConfig.preset("mbrl-lib", planning_matmul_dtype=dtype, **overrides)
    planner = base.planner.replace(num_samples=population, num_elites=max(1, population // 10))
    return dataclasses.replace(base, planner=planner)


def device_memory() -> dict | None:
    """The first device's ``memory_stats()`` in MiB (``None`` where it exposes none)."""
    import jax

    stats = jax.devices()[0].memory_stats()
    if not stats:
        return None
    keys = ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")
    return {k.replace("bytes", "mib"): stats[k] / 2**20 for k in keys if k in stats}


def is_out_of_memory(err: Exception) -> bool:
    """XLA reports an allocation failure only as a runtime error whose status is
    RESOURCE_EXHAUSTED: there is no narrower exception type to catch."""
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def build_planning_call(population: int, dtype: str):
    """``(compiled plan, plan state, args, info)`` for one planning call of the mbrl-lib
    PETS workload: ``plan(plan_state, key, model, obs) -> (action [A], plan_state)`` with
    the plan state donated and shifted (as in MPC). The model is freshly initialised (its
    weights do not change the cost)."""
    import functools

    import jax
    import jax.numpy as jnp

    from jaxmbrl.agents.pets import make_pets, pets_setup
    from jaxmbrl.planners import registry

    config = pets_config(population, dtype)
    pets = make_pets(config)
    setup = pets_setup(config)
    planner, _ = registry.build(config.planner, setup.env.action)

    @functools.partial(jax.jit, donate_argnums=(0,))
    def plan(plan_state, key, model, obs):
        action, plan_state, _ = planner.plan(plan_state, key, pets.objective(model, obs))
        return action, planner.shift(plan_state)

    args = (pets.init(jax.random.key(0)).model, jnp.asarray(OBS0, jnp.float32))
    t0 = time.perf_counter()
    compiled = plan.lower(planner.init(), jax.random.key(0), *args).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
    options = dict(config.planner.options)
    info = {
        "transitions_per_call": population
        * options["num_iterations"]
        * config.rollout.num_particles
        * config.planner.horizon,
        "flops_per_transition": flops_per_transition(setup.model_config),
        "compile_s": compile_s,
        "xla_temp_mib": None if temp is None else temp / 2**20,
    }
    return compiled, planner.init(), args, info


def time_planning(population: int, dtype: str, sizes: Sizes) -> dict:
    """One population: compile, a warm-up call, then as many timed calls (up to
    ``max_reps``) as the size budget leaves room for."""
    import jax
    from common import stats

    t_start = time.perf_counter()
    compiled, state, args, info = build_planning_call(population, dtype)
    calls = 0

    def call():
        nonlocal state, calls
        calls += 1
        action, state = compiled(state, jax.random.key(calls), *args)
        return jax.block_until_ready((action, state))[0]

    t0 = time.perf_counter()
    action = call()
    first_s = time.perf_counter() - t0
    row = {"population": population, "dtype": dtype, **info, "first_call_s": first_s}
    row["action_finite"] = bool(jax.numpy.all(jax.numpy.isfinite(action)))
    left = sizes.size_budget_s - (time.perf_counter() - t_start)
    if left < first_s:
        return {**row, "status": "over_size_budget", "memory": device_memory()}
    times = []
    for _ in range(min(sizes.max_reps, max(1, int(left // first_s)))):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    s = stats(times)
    tps = info["transitions_per_call"] / s["median"]
    return {
        **row,
        "status": "ok",
        "seconds": s,
        "transitions_per_s": tps,
        "tflops": tps * info["flops_per_transition"] / 1e12,
        "fraction_of_target_rate": tps / TARGET_TRANSITIONS_PER_S,
        "memory": device_memory(),
    }


def next_planning_row(prev: dict | None, population: int, dtype: str, sizes: Sizes,
                      deadline: float) -> dict:  # fmt: skip
    """Measure ``population``, or say why not: skipped when the previous size's compile
    time plus two calls scaled to this size do not fit before ``deadline``; an error or
    running out of memory is recorded (XLA reports it only as a runtime error whose
    message says RESOURCE_EXHAUSTED)."""
    if prev is not None:
        left = deadline - time.perf_counter()
        need = prev["compile_s"] + 2 * prev["seconds"]["median"] * population / prev["population"]
        if need > left:
            reason = f"projected {need:.0f} s > {left:.0f} s left in the phase budget"
            return {"population": population, "dtype": dtype, "status": "skipped", "reason": reason}
    try:
        return time_planning(population, dtype, sizes)
    except Exception as err:  # recorded; the growth stops here
        status = "out_of_memory" if is_out_of_memory(err) else "error"
        error = f"{type(err).__name__}: {str(err)[:600]}"
        return {"population": population, "dtype": dtype, "status": status, "error": error}


def planning_rows(rows: list, dtype: str, sizes: Sizes, deadline: float, save) -> None:
    """Append to ``rows`` (the phase record's) a row per population for ``dtype``, growing
    until one is not ``ok``; the larger ones are recorded as ``not_tried``."""
    prev = None
    for i, population in enumerate(sizes.populations):
        row = next_planning_row(prev, population, dtype, sizes, deadline)
        rows.append(row)
        print(f"  {one_planning_line(row)}", flush=True)
        if row["status"] != "ok":
            rows += [{"population": p, "dtype": dtype, "status": "not_tried"}
                     for p in sizes.populations[i + 1 :]]  # fmt: skip
        save()
        if row["status"] != "ok":
            return
        prev = row


def phase_planning(record: dict, dtypes, sizes: Sizes, deadline: float, save) -> None:
    """Planning rows per dtype, the phase's time left shared equally among the dtypes."""
    record["memory_note"] = MEMORY_NOTE
    record["rows"] = []
    for k, dtype in enumerate(dtypes):
        share = (deadline - time.perf_counter()) / (len(dtypes) - k)
        planning_rows(record["rows"], dtype, sizes, time.perf_counter() + share, save)


def phase_episode(record: dict, dtypes, sizes: Sizes, deadline: float, save) -> None:
    """One planned PETS episode (mbrl-lib preset) per dtype, after a random episode and a
    model training, timed after compilation."""
    import jax
    from common import stats

    from jaxmbrl.agents.pets import make_pets

    record["rows"] = []
    for dtype in dtypes:
        config = pets_config(
            sizes.episode_population, dtype, num_episodes=1, episode_length=sizes.episode_steps
        )
        if sizes.episode_train_epochs is not None:
            train = dataclasses.replace(config.train, max_epochs=sizes.episode_train_epochs)
            config = dataclasses.replace(config, train=train)
        pets = make_pets(config)
        t0 = time.perf_counter()
        state = pets.init(jax.random.key(0))
        state, _ = jax.jit(pets.random_episode)(state)
        state, _ = jax.jit(pets.train_model)(state)
        jax.block_until_ready(state)
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        episode = jax.jit(pets.planned_episode).lower(state).compile()
        row = {"dtype": dtype, "env": ENV_NAME, "steps": sizes.episode_steps,
               "population": sizes.episode_population,
               "setup_s": setup_s, "compile_s": time.perf_counter() - t0,
               "episode_s": [], "episode_return": []}  # fmt: skip
        record["rows"].append(row)
        while len(row["episode_s"]) < sizes.max_episode_runs:
            last = row["episode_s"][-1] if row["episode_s"] else 0.0
            if row["episode_s"] and time.perf_counter() + last > deadline:
                break
            t0 = time.perf_counter()
            _, ep = jax.block_until_ready(episode(state))
            row["episode_s"].append(time.perf_counter() - t0)
            row["episode_return"].append(float(ep.episode_return))
            row["seconds"] = stats(row["episode_s"])
            row["steps_per_s"] = sizes.episode_steps / row["seconds"]["median"]
            save()
        print(f"  {one_episode_line(row)}", flush=True)


def phase_rollouts(record: dict, dtypes, sizes: Sizes, deadline: float, save) -> None:
    """gymnax Pendulum-v1 random-action rollouts under ``jit(vmap(lax.scan))``."""
    import jax
    from bench_rollouts import scan_fn
    from common import stats

    from jaxmbrl.envs import make

    del dtypes
    env, params = make(ENV_NAME)
    record["rows"] = []
    for batch in sizes.rollout_batches:
        for method, step_env in (("vmap_scan_step_env", True), ("vmap_scan_step", False)):
            if time.perf_counter() > deadline:
                record["rows"].append({"method": method, "batch": batch, "status": "skipped",
                                       "reason": "phase budget spent"})  # fmt: skip
                print(f"  {one_rollout_line(record['rows'][-1])}", flush=True)
                continue
            keys = jax.random.split(jax.random.key(0), batch)
            t0 = time.perf_counter()
            compiled = scan_fn(env, params, sizes.rollout_horizon, step_env).lower(keys).compile()
            compile_s = time.perf_counter() - t0
            jax.block_until_ready(compiled(keys))
            times = []
            while len(times) < 10 and (len(times) < 3 or time.perf_counter() < deadline):
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(keys))
                times.append(time.perf_counter() - t0)
            s = stats(times)
            row = {"method": method, "env": ENV_NAME, "batch": batch, "status": "ok",
                   "horizon": sizes.rollout_horizon, "seconds": s, "compile_s": compile_s,
                   "env_steps_per_s": batch * sizes.rollout_horizon / s["median"]}  # fmt: skip
            record["rows"].append(row)
            save()
            print(f"  {one_rollout_line(row)}", flush=True)


PHASES = {"planning": phase_planning, "episode": phase_episode, "rollouts": phase_rollouts}


def child_main(args) -> int:
    """Run one phase and keep its record in ``args.part`` (rewritten after every row)."""
    t_start = time.perf_counter()
    sys.path.insert(0, str(HERE))
    import jax

    from jaxmbrl import reporting

    sizes = SMOKE if args.cpu_smoke else GPU
    deadline = t_start + args.budget
    record = {"machine": reporting.machine_record()}
    save = lambda: reporting.write_json(args.part, record)
    if record["machine"]["backend"] not in GPU_BACKENDS and not args.cpu_smoke:
        record["no_gpu"] = True
        save()
        return NO_GPU_EXIT
    record["jax_default_matmul_precision"] = jax.config.jax_default_matmul_precision
    PHASES[args.child](record, args.dtypes, sizes, deadline, save)
    record["seconds"] = time.perf_counter() - t_start
    save()
    return 0


# ---------------------------------------------------------------- the driver (parent)


@dataclasses.dataclass
class ChildResult:
    code: int | None  # None: killed at its hard limit
    seconds: float
    record: dict | None  # the part file, None if the child wrote none
    tail: list[str]


def child_env(smoke: bool) -> dict[str, str]:
    """The phase processes' environment: JAX takes 75 % of a GPU's memory by default; the
    phase process is alone on the GPU, so it may take 92 % (unless the caller set it)."""
    env = dict(os.environ)
    if not smoke:
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.92")
    return env


def run_child(phase: str, dtypes, soft_s: float, hard_s: float, smoke: bool, tmp) -> ChildResult:
    """Run one phase in a child process, echoing its output; kill it after ``hard_s``."""
    part = pathlib.Path(tmp) / f"{phase}-{'-'.join(dtypes) or 'all'}.json"
    cmd = [sys.executable, "-u", __file__, "--child", phase, "--part", str(part),
           "--budget", f"{soft_s:.1f}", "--dtypes", *dtypes]  # fmt: skip
    if smoke:
        cmd.append("--cpu-smoke")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        env=child_env(smoke),
    )  # fmt: skip
    killed = threading.Event()
    timer = threading.Timer(max(hard_s, 1.0), lambda: (killed.set(), proc.kill()))
    timer.start()
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = [*tail, line.rstrip()][-30:]
        print(line.rstrip(), flush=True)
    code = proc.wait()
    timer.cancel()
    record = json.loads(part.read_text()) if part.exists() else None
    return ChildResult(None if killed.is_set() else code, time.perf_counter() - t0, record, tail)


def no_gpu_message(machine: dict) -> str:
    return (
        f"no GPU: nothing measured (jax {machine.get('jax')} in {sys.executable}: backend "
        f"{machine.get('backend')!r}, devices {machine.get('devices')})\n{NEEDS}"
    )


def driver_main(args) -> int:
    from jaxmbrl import reporting

    smoke = args.cpu_smoke
    sizes = SMOKE if smoke else GPU
    total = args.total_budget or sizes.total_budget_s
    out = pathlib.Path(args.out)
    path = out / "gpu_check.json"
    t_start = time.perf_counter()
    hard_deadline = t_start + total + sizes.grace_s
    report = {
        "benchmark": "gpu_check",
        "mode": "cpu-smoke" if smoke else "gpu",
        "complete": False,
        "command": shlex.join(sys.argv),
        "machine": None,
        "python": sys.executable,
        "sizes": dataclasses.asdict(sizes) | {"total_budget_s": total},
        "workload": "PETSConfig.preset('mbrl-lib') on Pendulum-v1: 7 x (4 x 200 SiLU) "
        "Gaussian, 5 elites, 20 particles TS1, CEM H 15, 5 iterations, 10 % elites",
        "flops_per_transition_formula": FLOPS_FORMULA,
        "target": {"transitions_per_s": TARGET_TRANSITIONS_PER_S, "device": "H100"},
        "env": {k: child_env(smoke).get(k) for k in XLA_ENV},
        "phases": {},
    }
    phases = SMOKE_PHASES if smoke else GPU_PHASES
    failed = []
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        for name, child, dtypes, share in phases:
            soft = share * total
            hard = min(soft + sizes.grace_s, hard_deadline - time.perf_counter())
            print(f"== {name} (budget {soft:.0f} s, killed at {hard:.0f} s)", flush=True)
            res = run_child(child, dtypes, soft, hard, smoke, tmp)
            rec = res.record or {}
            if rec.get("no_gpu"):
                print(no_gpu_message(rec["machine"]), flush=True)
                return NO_GPU_EXIT
            report["machine"] = report["machine"] or rec.get("machine")
            rec.pop("machine", None)
            rec |= {"exit_code": res.code, "wall_s": res.seconds,
                    "killed_at_time_limit": res.code is None}  # fmt: skip
            if res.code != 0:
                rec["output_tail"] = res.tail
                failed.append(name)
            report["phases"][name] = rec
            fill_target(report)
            out.mkdir(parents=True, exist_ok=True)
            reporting.write_json(path, report)
    report["complete"] = True
    report["failed_phases"] = failed
    report["wall_s"] = time.perf_counter() - t_start
    reporting.write_json(path, report)
    print(table(report))
    failures = f", failed: {', '.join(failed)}" if failed else ""
    print(f"wrote {path} ({report['wall_s']:.0f} s{failures})")
    return 1 if failed else 0


def fill_target(report: dict) -> None:
    """The target's TFLOP/s, from the FLOPs per transition a planning row measured with."""
    for rec in report["phases"].values():
        for row in rec.get("rows", []):
            if "flops_per_transition" in row:
                flops = row["flops_per_transition"]
                report["target"]["flops_per_transition"] = flops
                report["target"]["tflops_at_target"] = TARGET_TRANSITIONS_PER_S * flops / 1e12
                return


# ---------------------------------------------------------------- the summary table


def one_planning_line(r: dict) -> str:
    head = f"planning {r['dtype']:>8} N={r['population']:>6}"
    if r["status"] != "ok":
        why = r.get("reason") or r.get("error", "")[:120]
        extra = ""
        if "first_call_s" in r:
            extra = f" compile {r['compile_s']:.1f} s, 1st call {r['first_call_s']:.2f} s"
        return f"{head}: {r['status']}{extra}" + (f" ({why})" if why else "")
    mem = r.get("memory") or {}
    peak = mem.get("peak_mib_in_use")
    return (
        f"{head}: {r['seconds']['median']:.4f} s/call [{r['seconds']['min']:.4f}-"
        f"{r['seconds']['max']:.4f}, n={r['seconds']['n']}], "
        f"{r['transitions_per_s'] / 1e6:,.1f} M trans/s, {r['tflops']:.2f} TFLOP/s "
        f"({100 * r['fraction_of_target_rate']:.1f} % of 300 M/s), compile {r['compile_s']:.1f} s"
        + (f", peak {peak:,.0f} MiB" if peak is not None else "")
        + (f", XLA temp {r['xla_temp_mib']:,.0f} MiB" if r.get("xla_temp_mib") is not None else "")
    )


def one_episode_line(r: dict) -> str:
    if "seconds" not in r:
        return f"episode {r['dtype']}: no run finished (compile {r['compile_s']:.1f} s)"
    return (
        f"episode {r['dtype']} N={r['population']} {r['steps']} steps: "
        f"{r['seconds']['median']:.2f} s "
        f"[{r['seconds']['min']:.2f}-{r['seconds']['max']:.2f}, n={r['seconds']['n']}] "
        f"({r['steps_per_s']:.1f} steps/s), compile {r['compile_s']:.1f} s, "
        f"setup {r['setup_s']:.1f} s, returns {[round(x, 1) for x in r['episode_return']]}"
    )


def one_rollout_line(r: dict) -> str:
    if r["status"] != "ok":
        return f"rollouts {r['method']} B={r['batch']}: {r['status']} ({r['reason']})"
    return (
        f"rollouts {r['method']} B={r['batch']} H={r['horizon']}: "
        f"{r['seconds']['median'] * 1e3:.2f} ms, {r['env_steps_per_s'] / 1e6:,.1f} M env-steps/s, "
        f"compile {r['compile_s']:.1f} s"
    )


def table(report: dict) -> str:
    m = report["machine"] or {}
    lines = [
        f"gpu_check ({report['mode']}) on {m.get('device')} (backend {m.get('backend')}, "
        f"jax {m.get('jax')}); target 300 M transitions/s = "
        f"{report['target'].get('tflops_at_target', float('nan')):.1f} TFLOP/s",
    ]
    for name, rec in report["phases"].items():
        lines.append(f"[{name}] wall {rec['wall_s']:.0f} s, exit {rec['exit_code']}")
        for row in rec.get("rows", []):
            if "steps" in row:
                lines.append("  " + one_episode_line(row))
            elif "population" in row:
                lines.append("  " + one_planning_line(row))
            else:
                lines.append("  " + one_rollout_line(row))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu_check", help="folder of gpu_check.json")
    parser.add_argument(
        "--cpu-smoke", "--quick", action="store_true", help="tiny sizes on any backend"
    )
    parser.add_argument(
        "--total-budget", type=float, help="seconds for all phases (default 450; smoke 55)"
    )
    parser.add_argument("--child", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--dtypes", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return child_main(args) if args.child else driver_main(args)


if __name__ == "__main__":
    sys.exit(main())
