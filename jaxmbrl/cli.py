"""The ``jaxmbrl`` command.

Subcommands:

* ``jaxmbrl mpc --env NAME --planner {random,cem,icem,mppi} --seeds S --episodes E --out DIR``:
  oracle MPC (the environment's own dynamics as the model) on a gymnax environment; one
  compiled program runs an episode for all ``S`` seeds (``vmap``), ``E`` episodes run one
  after the other. Prints one line per episode and writes ``DIR/results.json``.

Flags are parsed here and turned into the library's typed configs; library code never sees
them. Bad input (unknown environment or planner, a count below 1, an unwritable ``--out``)
prints one ``jaxmbrl: error: ...`` line on stderr and exits with code 2, before any work and
without writing results.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import sys
import tempfile
import time
from typing import Any, NoReturn

CONTINUOUS_PLANNERS = ("random", "cem", "icem", "mppi")
DISCRETE_PLANNERS = ("random", "cem")
DEFAULT_HORIZON = 30  # perf-notes: CEM at H 15 sometimes fails to swing Pendulum up
ELITE_RATIO = 0.1  # mbrl-lib's CEM elite ratio, used when --population is given


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``jaxmbrl`` command (subcommands as sub-parsers)."""
    parser = _Parser(prog="jaxmbrl", description="JAX planning engine for model-based RL.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    mpc = sub.add_parser(
        "mpc",
        help="oracle MPC on a gymnax environment (its own dynamics as the model)",
        description="Receding-horizon control with the environment's own step_env as the "
        "model; seeds are one vmapped program, episodes run one after the other.",
    )
    mpc.add_argument("--env", required=True, help="environment name, e.g. Pendulum-v1")
    mpc.add_argument(
        "--planner",
        required=True,
        choices=CONTINUOUS_PLANNERS,
        help="random, cem, icem or mppi (random and cem on discrete-action environments)",
    )
    mpc.add_argument("--seeds", type=_positive_int, default=1, help="S seeds (default 1)")
    mpc.add_argument("--episodes", type=_positive_int, default=1, help="E episodes (default 1)")
    mpc.add_argument("--out", required=True, help="output folder for results.json")
    mpc.add_argument(
        "--horizon", type=_positive_int, default=DEFAULT_HORIZON, help="H (default 30)"
    )
    mpc.add_argument(
        "--population", type=_positive_int, default=None, help="N samples per iteration"
    )
    mpc.add_argument(
        "--iterations", type=_positive_int, default=None, help="iterations per planning call"
    )
    mpc.add_argument(
        "--steps", type=_positive_int, default=None, help="episode length (default: the env's)"
    )
    mpc.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=None,
        help="score candidates in chunks of this many (default: all at once)",
    )
    mpc.add_argument("--seed", type=_non_negative_int, default=0, help="base seed (default 0)")
    mpc.set_defaults(handler=_cmd_mpc)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxmbrl`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as e:
        print(f"{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------------------
# mpc
# --------------------------------------------------------------------------------------


def _planner_for(args: argparse.Namespace, env: Any, env_params: Any):
    """``(planner, config)`` for the environment's action space (discrete variants for
    discrete spaces), via :func:`jaxmbrl.planners.registry.make_planner`."""
    from gymnax.environments import spaces

    from jaxmbrl.planners import registry

    space = env.action_space(env_params)
    names = registry.planner_names(space)
    if args.planner not in names:
        kind = "discrete" if isinstance(space, spaces.Discrete) else "continuous"
        raise UsageError(
            f"planner {args.planner!r} is not available for the {kind}-action environment "
            f"{args.env}; choose from {', '.join(names)}"
        )
    options: dict[str, Any] = {"num_samples": args.population, "num_iterations": args.iterations}
    if args.population is not None and args.planner in ("cem", "icem"):
        options["num_elites"] = max(1, math.ceil(ELITE_RATIO * args.population))
    try:
        return registry.make_planner(args.planner, space, horizon=args.horizon, **options)
    except ValueError as e:
        raise UsageError(f"bad planner settings: {e}") from None


def _prepare_out(out: str) -> str:
    """Create ``out`` if needed and check that a file can be written there."""
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-", delete=True):
            pass
    except OSError as e:
        raise UsageError(f"cannot write to --out {out!r}: {e.strerror or e}") from None
    return out


def _versions() -> dict[str, str]:
    import importlib.metadata

    import jax
    import jaxlib

    import jaxmbrl

    def dist(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {
        "jaxmbrl": jaxmbrl.__version__,
        "jax": jax.__version__,
        "jaxlib": getattr(jaxlib, "__version__", dist("jaxlib")),
        "gymnax": dist("gymnax"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "device": str(jax.devices()[0].device_kind),
        "backend": jax.default_backend(),
    }


def _write_json_atomic(path: str, payload: dict) -> None:
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".results-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _cmd_mpc(args: argparse.Namespace) -> int:
    from jaxmbrl import envs

    try:
        env, env_params = envs.make(args.env)
    except ValueError as e:
        raise UsageError(str(e)) from None
    planner, planner_config = _planner_for(args, env, env_params)
    planner_name = type(planner_config).__name__
    num_steps = args.steps or int(env_params.max_steps_in_episode)
    out = _prepare_out(args.out)

    import jax
    import numpy as np

    from jaxmbrl.agents.mpc import run_seeds

    episode_fn = jax.jit(
        functools.partial(
            run_seeds, env, env_params, planner, num_steps=num_steps, chunk_size=args.chunk_size
        )
    )
    seed_keys = jax.random.split(jax.random.key(args.seed), args.seeds)  # [S]

    start = time.perf_counter()
    compiled = episode_fn.lower(seed_keys).compile()
    compile_s = time.perf_counter() - start
    print(
        f"mpc {args.env} planner={args.planner} ({planner_name}) H={args.horizon} "
        f"seeds={args.seeds} steps={num_steps} device={jax.devices()[0].device_kind} "
        f"compile {compile_s:.2f} s",
        flush=True,
    )

    returns = np.zeros((args.seeds, args.episodes))
    walls = []
    for e in range(args.episodes):
        keys = jax.vmap(lambda k, e=e: jax.random.fold_in(k, e))(seed_keys)
        start = time.perf_counter()
        result = compiled(keys)
        ep_returns = np.asarray(jax.block_until_ready(result.episode_return), np.float64)
        wall = time.perf_counter() - start
        returns[:, e] = ep_returns
        walls.append(wall)
        print(
            f"episode {e + 1}/{args.episodes}  return mean {ep_returns.mean():.2f}  "
            f"min {ep_returns.min():.2f}  max {ep_returns.max():.2f}  ({wall:.2f} s)",
            flush=True,
        )

    payload = {
        "command": "mpc",
        "env": args.env,
        "planner": args.planner,
        "planner_config_type": planner_name,
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
        "versions": _versions(),
    }
    _write_json_atomic(os.path.join(out, "results.json"), payload)
    print(f"wrote {os.path.join(out, 'results.json')}", flush=True)
    return 0


__all__ = ["build_parser", "main"]


if __name__ == "__main__":
    raise SystemExit(main())
