"""``jaxmbrl mpc``: oracle MPC -- the environment's own dynamics as the model.

One compiled program runs an episode for all ``S`` seeds (``vmap``); ``E`` episodes run one
after the other. Prints one line per episode and writes ``DIR/results.json``; one run at a
time holds ``DIR`` (another is refused).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import time

from jaxmbrl.cli import common

DEFAULT_HORIZON = 30  # CEM at H 15 sometimes fails to swing Pendulum-v1 up
ELITE_RATIO = 0.1  # mbrl-lib's CEM elite ratio, used when --population is given


def add_parser(sub, parents) -> None:
    p = sub.add_parser(
        "mpc",
        parents=parents,
        help="oracle MPC (the environment's own dynamics as the model)",
        description="Receding-horizon control with the environment's own dynamics as the "
        "model; seeds are one vmapped program, episodes run one after the other. "
        f"--horizon defaults to {DEFAULT_HORIZON}; with --population, CEM and iCEM take "
        f"ceil({ELITE_RATIO} * N) elites unless --elites is given.",
        epilog=common.PLANNER_OPTIONS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder for results.json")
    p.add_argument("--episodes", type=common.positive_int, default=1, help="E (default 1)")
    p.add_argument(
        "--chunk-size",
        type=common.positive_int,
        default=None,
        help="score candidates in chunks of this many (default: all at once)",
    )
    p.set_defaults(handler=run)


def _planner(args: argparse.Namespace, spec):
    from jaxmbrl.planners import registry

    base = registry.PlannerSpec("auto", horizon=DEFAULT_HORIZON)
    discrete = spec.action.is_discrete
    planner_spec = common.planner_spec(base, args, discrete)
    taken = registry.options_of(planner_spec.name, discrete)
    options = dict(planner_spec.options)
    if args.population is not None and "num_elites" in taken and "num_elites" not in options:
        planner_spec = planner_spec.replace(
            num_elites=max(1, math.ceil(ELITE_RATIO * args.population))
        )
    try:
        planner, config = registry.build(planner_spec, spec.action)
    except ValueError as e:
        raise common.UsageError(f"bad planner settings: {e}") from None
    return planner_spec, planner, config


def run(args: argparse.Namespace) -> int:
    spec, env = common.load_env(args.env, args.steps)
    common.require_jax_env(args.env, env, "jaxmbrl mpc (planning with the true dynamics)")
    planner_spec, planner, planner_config = _planner(args, spec)
    out = common.prepare_out(args.out)

    from jaxmbrl import runner

    try:
        with runner.lock_output(out):  # one run at a time writes into --out
            return _episodes(args, out, spec, env, planner_spec, planner, planner_config)
    except runner.OutputLockedError as e:
        raise common.out_in_use(out, e.pid) from None


def _episodes(args, out: str, spec, env, planner_spec, planner, planner_config) -> int:
    """Compile, run the episodes, write ``results.json`` (``out`` held by the caller)."""
    import jax
    import numpy as np

    from jaxmbrl import mpc, reporting

    num_steps = spec.episode_length
    episode_fn = jax.jit(
        functools.partial(
            mpc.run_seeds, env, planner, num_steps=num_steps, chunk_size=args.chunk_size
        )
    )
    seed_keys = jax.random.split(jax.random.key(args.seed), args.seeds)  # [S]
    start = time.perf_counter()
    compiled = episode_fn.lower(seed_keys).compile()
    compile_s = time.perf_counter() - start
    config_type = type(planner_config).__name__
    print(
        f"mpc {args.env} planner={planner_spec.name} ({config_type}) H={planner_spec.horizon} "
        f"seeds={args.seeds} steps={num_steps} device={jax.devices()[0].device_kind} "
        f"compile {compile_s:.2f} s",
        flush=True,
    )
    returns, walls = np.zeros((args.seeds, args.episodes)), []
    for e in range(args.episodes):
        keys = jax.vmap(lambda k, e=e: jax.random.fold_in(k, e))(seed_keys)
        start = time.perf_counter()
        result = compiled(keys)
        ep_returns = np.asarray(jax.block_until_ready(result.episode_return), np.float64)
        walls.append(time.perf_counter() - start)
        returns[:, e] = ep_returns
        print(
            f"episode {e + 1}/{args.episodes}  return mean {ep_returns.mean():.2f}  "
            f"min {ep_returns.min():.2f}  max {ep_returns.max():.2f}  ({walls[-1]:.2f} s)",
            flush=True,
        )
    payload = {
        "command": "mpc",
        "env": args.env,
        "planner": planner_spec.name,
        "planner_config_type": config_type,
        "planner_config": dataclasses.asdict(planner_config),
        "seeds": args.seeds,
        "episodes": args.episodes,
        "base_seed": args.seed,
        "num_steps": num_steps,
        "chunk_size": args.chunk_size,
        "episode_returns": returns.tolist(),
        "mean_return": float(returns.mean()),
        "episode_wall_s": walls,
        "compile_s": compile_s,
        "versions": reporting.machine_record(),
    }
    path = os.path.join(out, "results.json")
    try:
        reporting.write_json(path, payload)
    except OSError as e:
        raise common.write_failed(out, e, "results.json was not written", "run it again") from None
    print(f"wrote {path}", flush=True)
    return 0
