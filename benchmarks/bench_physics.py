#!/usr/bin/env python
"""True-physics rollouts/s of the MuJoCo families, with gymnasium's host rate beside them.

What jaxmbrl's oracle objective and a pure-JAX episode pay per environment step, measured on
the library's own ``Environment.step`` (:func:`jaxmbrl.envs.load`):

* ``playground:CartpoleSwingup`` and ``playground:CheetahRun`` (MJX's pure-JAX path) at
  ``B`` in {1, 64, 1024};
* ``brax:halfcheetah`` and ``brax:reacher`` on Brax's ``spring`` backend at ``B`` in {1, 128};

each as ``jit(vmap(lax.scan(env.step)))`` over ``H`` (100) real steps of uniform random actions
from ``B`` reset states. The reset is compiled and run outside the timer; the step program's
compile time (tracing included) and the reset's are reported separately from the rate.
Environment steps are real steps (each ``action_repeat`` underlying steps; both tasks' default
repeat is 1 here).

For comparison, gymnasium's ``HalfCheetah-v5`` and ``Pendulum-v1`` stepped on the host, one
environment, through :class:`jaxmbrl.envs.gymnasium_adapter.GymnasiumEnv` (what
``jaxmbrl pets --env gymnasium:...`` steps between its compiled planning calls), over 2,000
steps of uniform random actions drawn beforehand.

A family whose optional library is missing (the ``mujoco`` extra) is skipped with a printed
reason, recorded under ``skipped``. ``--quick`` is a smoke run: the families' cheapest tasks to
compile (``playground:PendulumSwingup`` at B 64, ``brax:inverted_pendulum`` at B 8, H 20) and
200 gymnasium steps.

Reported: median [min-max] milliseconds per batch over repeats after compilation, env-steps/s,
compile seconds, load seconds (import and environment construction), and the load average
at start and end (the rates are only as quiet as the machine was).

Run: ``python benchmarks/bench_physics.py [--quick] [--families playground brax gymnasium]
[--out DIR]``; writes ``DIR/physics.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import pathlib
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import compile_stats, machine, stats, timed, write_json

from jaxmbrl import envs

FAMILIES = ("playground", "brax", "gymnasium")
# The module each family needs, and the distributions whose versions the report records.
REQUIRES = {"playground": "mujoco_playground", "brax": "brax", "gymnasium": "gymnasium"}
VERSIONS = ("playground", "brax", "mujoco", "mujoco-mjx", "gymnasium")
INSTALL_HINT = "pip install 'jaxmbrl[mujoco]'"


def workloads(quick: bool) -> dict[str, list[tuple[str, list[int]]]]:
    """``family -> [(environment name, batch sizes)]``."""
    if quick:
        return {
            "playground": [("playground:PendulumSwingup", [64])],
            "brax": [("brax:inverted_pendulum", [8])],
            "gymnasium": [("gymnasium:HalfCheetah-v5", [1]), ("gymnasium:Pendulum-v1", [1])],
        }
    return {
        "playground": [
            ("playground:CartpoleSwingup", [1, 64, 1024]),
            ("playground:CheetahRun", [1, 64, 1024]),
        ],
        "brax": [("brax:halfcheetah", [1, 128]), ("brax:reacher", [1, 128])],
        "gymnasium": [("gymnasium:HalfCheetah-v5", [1]), ("gymnasium:Pendulum-v1", [1])],
    }


def missing(family: str) -> str | None:
    """Why ``family`` cannot run here, or ``None``."""
    module = REQUIRES[family]
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed ({INSTALL_HINT})"
    return None


def versions() -> dict[str, str | None]:
    out = {}
    for dist in VERSIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def rollout_fn(env):
    """``jit((states [B], actions [B, H, A]) -> (returns [B], last states [B]))``: ``H``
    steps of each state.

    The last state is returned too: a reward that does not read the state (brax's
    ``inverted_pendulum`` pays 1 per step) would otherwise let XLA drop the physics.
    """

    def single(state, actions):
        def body(carry, action):
            state, ret = carry
            _, state, reward, _ = env.step(jax.random.key(0), state, action)  # key unused
            return (state, ret + reward), None

        (state, ret), _ = jax.lax.scan(body, (state, jnp.float32(0.0)), actions)
        return ret, state

    return jax.jit(jax.vmap(single))


def row(family, name, spec, batch, horizon, times, **extra) -> dict:
    s = stats(times)
    return {
        "family": family,
        "env": name,
        "batch": batch,
        "horizon": horizon,
        "action_repeat": spec.action_repeat,
        "ms_per_batch": {k: v * 1e3 if k != "n" else v for k, v in s.items()},
        "env_steps_per_s": batch * horizon / s["median"],
        **extra,
    }


def bench_jax(family: str, name: str, batches: list[int], horizon: int, reps: int) -> list[dict]:
    """Rows for one pure-JAX environment (``playground:`` or ``brax:``) at each batch size."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brax 0.14 on mujoco 3.x: deprecation noise
        spec, env = envs.load(name)
    load_s = time.perf_counter() - t0
    rows = []
    for b in batches:
        reset = jax.jit(jax.vmap(env.reset))
        keys = jax.random.split(jax.random.key(0), b)
        reset_c, reset_s, _ = compile_stats(reset, keys)
        _, states = jax.block_until_ready(reset_c(keys))
        actions = jax.vmap(lambda k: jax.vmap(env.sample_action)(jax.random.split(k, horizon)))(
            jax.random.split(jax.random.key(1), b)
        )  # [B, H, A]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled, compile_s, memory_mib = compile_stats(rollout_fn(env), states, actions)
        returns, _ = jax.block_until_ready(compiled(states, actions))  # warm-up
        times = timed(lambda c=compiled, s=states, a=actions: c(s, a), reps)
        r = row(
            family,
            spec.name,
            spec,
            b,
            horizon,
            times,
            compile_s=compile_s,
            reset_compile_s=reset_s,
            load_s=load_s,
            memory_mib=memory_mib or 0.0,
            finite_returns=float(np.isfinite(np.asarray(returns)).mean()),
        )
        rows.append(r)
        print(
            f"{spec.name} B={b} H={horizon}: {r['ms_per_batch']['median']:.2f} ms, "
            f"{r['env_steps_per_s']:,.0f} env-steps/s, compile {compile_s:.1f} s "
            f"(reset {reset_s:.1f} s), load {load_s:.1f} s",
            flush=True,
        )
    return rows


def bench_host(name: str, steps: int, reps: int) -> list[dict]:
    """One row: ``steps`` host steps of one gymnasium environment, ``reps`` times."""
    t0 = time.perf_counter()
    spec, host = envs.load(name, steps)
    env = host.make()
    load_s = time.perf_counter() - t0
    keys = jax.random.split(jax.random.key(1), steps)
    actions = list(np.asarray(jax.jit(jax.vmap(host.sample_action))(keys)))

    def episode():
        env.reset(0)
        for a in actions:
            _, _, terminated, truncated = env.step(a)
            if terminated or truncated:
                env.reset(0)

    episode()  # warm-up (MuJoCo's first steps, gymnasium's checkers)
    times = timed(episode, reps)
    env.close()
    r = row("gymnasium", spec.name, spec, 1, steps, times, load_s=load_s)
    print(
        f"{spec.name} host, 1 env: {r['env_steps_per_s']:,.0f} env-steps/s "
        f"({r['ms_per_batch']['median'] / steps * 1e3:.1f} us per step)",
        flush=True,
    )
    return [r]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    args = parser.parse_args(argv)
    horizon = 20 if args.quick else 100
    reps = 3 if args.quick else 5
    host_steps = 200 if args.quick else 2000
    load_start = os.getloadavg()
    rows, skipped = [], {}
    plan = workloads(args.quick)
    for family in args.families:
        reason = missing(family)
        if reason:
            print(f"skipping {family}: {reason}", flush=True)
            skipped[family] = reason
            continue
        for name, batches in plan[family]:
            if family == "gymnasium":
                try:
                    rows += bench_host(name, host_steps, reps)
                except ValueError as e:  # e.g. HalfCheetah-v5 without gymnasium[mujoco]
                    print(f"skipping {name}: {e}", flush=True)
                    skipped[name] = str(e)
            else:
                rows += bench_jax(family, name, batches, horizon, reps)
    report = {
        "benchmark": "physics",
        "machine": machine(),
        "libraries": versions(),
        "quick": args.quick,
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "rows": rows,
        "skipped": skipped,
    }
    write_json(pathlib.Path(args.out) / "physics.json", report)
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
