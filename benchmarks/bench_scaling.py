#!/usr/bin/env python
"""Scaling curves: imagined transitions/s, memory and compile time against N, P, H, E and B.

The base point is the mbrl-lib default PETS workload (``bench_planning.py``'s
``pendulum_cem``): a Gaussian ensemble of 4 x 200 SiLU layers, TS1 propagation. One axis at
a time is varied around it:

* ``candidates`` N (one objective evaluation of ``[N, H, A]`` sequences, P 20, H 15, 5 elite
  members),
* ``particles`` P,
* ``horizon`` H,
* ``members``: the ensemble size E, all members propagating (elites = E),
* ``batch``: B independent planners (``jax.vmap`` of a whole CEM planning call, pop 50,
  5 iterations, over B start observations), the way many environments or seeds are planned
  for at once.

For each point: median [min-max] seconds per call over repeats after compilation,
transitions/s, compile seconds, and XLA's memory of the compiled call (temporary buffers
plus arguments and outputs: the peak the call needs on the device).

Run: ``python benchmarks/bench_scaling.py [--quick] [--out DIR] [--matmul-dtype float32]``;
writes ``DIR/scaling.json``.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import fmt, machine, stats, timed, write_json

from jaxmbrl.envs import make
from jaxmbrl.envs.reward_fns import known_functions
from jaxmbrl.models import ensemble as ens
from jaxmbrl.planners import MBRL_LIB_STEP, CEMConfig, cem
from jaxmbrl.rollouts import RolloutConfig, make_particle_objective

BASE = dict(candidates=350, particles=20, horizon=15, members=5)
QUICK_BASE = dict(candidates=50, particles=10, horizon=5, members=3)
FULL_AXES = {
    "candidates": [50, 100, 350, 1000, 2000, 4000],
    "particles": [5, 10, 20, 40],
    "horizon": [5, 15, 30, 60],
    "members": [1, 3, 5, 7, 10],
    "batch": [1, 2, 4, 8, 16],
}
QUICK_AXES = {
    "candidates": [50, 100],
    "particles": [5],
    "horizon": [10],
    "members": [1],
    "batch": [1, 2],
}


def _memory_mib(compiled) -> float | None:
    mem = compiled.memory_analysis()
    if mem is None:
        return None
    total = sum(
        getattr(mem, f, 0) or 0
        for f in ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes")
    )
    return total / 2**20


def _model(members: int, matmul_dtype: str):
    config = ens.EnsembleConfig(
        obs_dim=3, action_dim=1, num_members=members, num_elites=members,
        hidden_sizes=(200,) * 4, matmul_dtype=matmul_dtype,
    )  # fmt: skip
    return config, ens.init(config, jax.random.key(0))


def objective_point(n, p, h, e, matmul_dtype):
    """One objective evaluation of ``[N, H, 1]`` sequences: ``(fn, args, transitions)``."""
    _, env_params = make("Pendulum-v1")
    reward_fn, _ = known_functions("Pendulum-v1", env_params)
    config, model = _model(e, matmul_dtype)
    rollout = RolloutConfig(num_particles=p, propagation="ts1")

    @jax.jit
    def evaluate(model, obs, key, actions):
        objective = make_particle_objective(
            rollout, functools.partial(ens.predict_grouped, config, model), obs,
            num_members=e, reward_fn=reward_fn,
        )  # fmt: skip
        return objective(key, actions)

    actions = jax.random.uniform(jax.random.key(1), (n, h, 1), minval=-2.0, maxval=2.0)
    obs = jnp.array([-1.0, 0.0, 0.0])
    return evaluate, (model, obs, jax.random.key(2), actions), n * p * h


def batch_point(b, matmul_dtype, quick=False):
    """B vmapped CEM planning calls (pop 50, 5 iterations, P 20, H 15; quick: P 5, H 5)."""
    particles, horizon = (5, 5) if quick else (20, 15)
    _, env_params = make("Pendulum-v1")
    reward_fn, _ = known_functions("Pendulum-v1", env_params)
    config, model = _model(5, matmul_dtype)
    planner = cem(CEMConfig(horizon=horizon, action_low=(-2.0,), action_high=(2.0,),
                            num_samples=50, num_elites=5, num_iterations=5,
                            **MBRL_LIB_STEP))  # fmt: skip
    rollout = RolloutConfig(num_particles=particles, propagation="ts1")

    def plan_one(state, key, model, obs):
        objective = make_particle_objective(
            rollout, functools.partial(ens.predict_grouped, config, model), obs,
            num_members=5, reward_fn=reward_fn,
        )  # fmt: skip
        action, state, _ = planner.plan(state, key, objective)
        return action

    plan = jax.jit(jax.vmap(plan_one, in_axes=(0, 0, None, 0)))
    states = jax.vmap(lambda _: planner.init())(jnp.arange(b))
    keys = jax.random.split(jax.random.key(3), b)
    theta = jnp.linspace(-np.pi, np.pi, b, endpoint=False)
    obs = jnp.stack([jnp.cos(theta), jnp.sin(theta), jnp.zeros(b)], axis=-1)
    return plan, (states, keys, model, obs), b * 50 * particles * horizon * 5


def measure(fn, args, transitions, reps):
    import time

    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))
    s = stats(timed(lambda: compiled(*args), reps))
    return {
        "seconds": s,
        "transitions": transitions,
        "transitions_per_s": transitions / s["median"],
        "compile_s": compile_s,
        "memory_mib": _memory_mib(compiled),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--matmul-dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--axes", nargs="*", default=None, choices=sorted(FULL_AXES))
    args = parser.parse_args(argv)
    axes = QUICK_AXES if args.quick else FULL_AXES
    base = QUICK_BASE if args.quick else BASE
    reps = 2 if args.quick else 5
    curves = {}
    for axis in args.axes or list(axes):
        curves[axis] = []
        for value in axes[axis]:
            if axis == "batch":
                fn, fargs, transitions = batch_point(value, args.matmul_dtype, args.quick)
            else:
                point = dict(base, **{axis: value})
                fn, fargs, transitions = objective_point(
                    point["candidates"], point["particles"], point["horizon"],
                    point["members"], args.matmul_dtype,
                )  # fmt: skip
            result = {"value": value, **measure(fn, fargs, transitions, reps)}
            curves[axis].append(result)
            print(
                f"{axis}={value}: {fmt(result['seconds'], 4)} s, "
                f"{result['transitions_per_s']:,.0f} transitions/s, "
                f"compile {result['compile_s']:.2f} s, memory {result['memory_mib'] or 0:.1f} MiB",
                flush=True,
            )
    report = {
        "benchmark": "scaling",
        "machine": machine(),
        "quick": args.quick,
        "matmul_dtype": args.matmul_dtype,
        "base": base,
        "curves": curves,
    }
    write_json(pathlib.Path(args.out) / "scaling.json", report)
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
