"""The ``jaxmbrl`` command.

Subcommands:

* ``jaxmbrl mpc --env NAME --planner {random,cem,icem,mppi} --seeds S --episodes E --out DIR``:
  oracle MPC (the environment's own dynamics as the model) on a gymnax environment; one
  compiled program runs an episode for all ``S`` seeds (``vmap``), ``E`` episodes run one
  after the other. Prints one line per episode and writes ``DIR/results.json``.
* ``jaxmbrl pets --env NAME --episodes E --seeds S --out DIR [options]``: a whole PETS
  experiment (:func:`jaxmbrl.agents.pets.run`): random seeding episodes, then ``E`` planned
  episodes, seeds as one vmapped program. A live bar per episode, one line per episode,
  a checkpoint and ``DIR/results.json`` (written atomically) after every episode, and
  ``DIR/learning_curve.png`` at the end. ``--resume`` continues an interrupted run
  (Ctrl-C: exit 130) with the same results as an uninterrupted one. ``--preset mbrl-lib``
  starts from mbrl-lib's PETS defaults; explicit flags override the preset.
* ``jaxmbrl bench [--quick] [--only SECTION ...] [--out DIR]``: the benchmarks of
  ``benchmarks/`` (:mod:`jaxmbrl.bench`), with mbrl-lib in the same run when its environment
  exists; writes ``DIR/bench.json``, ``DIR/bench.md`` and plots.
* ``jaxmbrl demo [--out DIR]``: a short PETS run on Pendulum-v1 (1 seed, the default preset,
  5 planned episodes) that learns visibly in a few minutes on a 2-core CPU; it starts afresh
  in ``DIR`` (default ``runs/demo``) every time.

Flags are parsed here and turned into the library's typed configs; library code never sees
them. Bad input (unknown environment or planner, a count below 1, inconsistent settings, an
unwritable ``--out``) prints one ``jaxmbrl ...: error: ...`` line on stderr and exits with
code 2, before any work and without creating the output folder or writing results.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import pathlib
import platform
import re
import shutil
import sys
import tempfile
import time
from typing import Any, NoReturn

from jaxmbrl.rollouts import PROPAGATIONS

CONTINUOUS_PLANNERS = ("random", "cem", "icem", "mppi")
DISCRETE_PLANNERS = ("random", "cem")
DEFAULT_HORIZON = 30  # perf-notes: CEM at H 15 sometimes fails to swing Pendulum up
ELITE_RATIO = 0.1  # mbrl-lib's CEM elite ratio, used when --population is given
PRESETS = ("default", "mbrl-lib")
LEARNED_REWARD = {"auto": None, "on": True, "off": False}
DEMO_OUT = os.path.join("runs", "demo")
DEMO_SEEDS = (0,)
# What a previous demo leaves in its folder; `jaxmbrl demo` deletes these (and only these).
DEMO_OUTPUTS = ("checkpoints", "results.json", "learning_curve.png")


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr, exit code 2."""


class _ReportedInterrupt(KeyboardInterrupt):
    """A Ctrl-C whose one-line message has already been printed."""


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


def _hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers >= 1 such as 200,200,200, got {text!r}"
        )
    return sizes


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

    pets = sub.add_parser(
        "pets",
        help="PETS: learn an ensemble model and plan through it (Chua et al. 2018)",
        description="A whole PETS experiment: random seeding episodes, then E planned episodes "
        "(train the ensemble on all real data, run one MPC episode through it). Seeds run as "
        "one vmapped program. Settings not given come from --preset; explicit flags override "
        "it. Writes DIR/results.json after every episode, a checkpoint per episode in "
        "DIR/checkpoints (--resume continues from it) and DIR/learning_curve.png at the end.",
    )
    pets.add_argument("--env", required=True, help="environment name, e.g. Pendulum-v1")
    pets.add_argument("--out", required=True, help="output folder (results, plot, checkpoints)")
    pets.add_argument(
        "--episodes",
        type=_positive_int,
        default=None,
        help="E planned episodes, after the random ones (default: the preset's, 10)",
    )
    pets.add_argument("--seeds", type=_positive_int, default=1, help="S seeds (default 1)")
    pets.add_argument(
        "--seed", type=_non_negative_int, default=0, help="base seed: seeds are base..base+S-1"
    )
    pets.add_argument(
        "--preset",
        choices=PRESETS,
        default="default",
        help="default (tuned to learn Pendulum-v1 in minutes) or mbrl-lib (mbrl-lib 0.2.0's "
        "PETS defaults); explicit flags override it",
    )
    pets.add_argument(
        "--planner",
        choices=CONTINUOUS_PLANNERS,
        default=None,
        help="random, cem, icem or mppi (random and cem on discrete-action environments; "
        "default: mppi, or cem for discrete actions; cem with --preset mbrl-lib)",
    )
    pets.add_argument("--horizon", type=_positive_int, default=None, help="H, imagined steps")
    pets.add_argument(
        "--population", type=_positive_int, default=None, help="N candidate sequences"
    )
    pets.add_argument("--elites", type=_positive_int, default=None, help="CEM/iCEM elites")
    pets.add_argument(
        "--iterations", type=_positive_int, default=None, help="planner iterations per step"
    )
    pets.add_argument(
        "--particles", type=_positive_int, default=None, help="P particles per candidate"
    )
    pets.add_argument(
        "--propagation",
        choices=PROPAGATIONS,
        default=None,
        help="particle propagation: ts1, tsinf or expectation",
    )
    pets.add_argument(
        "--ensemble-size", type=_positive_int, default=None, help="E ensemble members"
    )
    pets.add_argument(
        "--model-elites",
        type=_positive_int,
        default=None,
        help="members that propagate particles (<= --ensemble-size)",
    )
    pets.add_argument(
        "--hidden",
        type=_hidden_sizes,
        default=None,
        metavar="W1,W2,...",
        help="hidden layer widths of each member, e.g. 200,200,200",
    )
    pets.add_argument(
        "--learned-reward",
        choices=tuple(LEARNED_REWARD),
        default=None,
        help="learn the reward with the model: auto (only when the environment has no known "
        "reward function), on or off",
    )
    pets.add_argument(
        "--random-episodes",
        type=_positive_int,
        default=None,
        help="random-action episodes that seed the data",
    )
    pets.add_argument(
        "--steps", type=_positive_int, default=None, help="episode length (default: the env's)"
    )
    pets.add_argument(
        "--epochs", type=_positive_int, default=None, help="most training epochs per episode"
    )
    pets.add_argument(
        "--oracle",
        action="store_true",
        help="also plan each episode from the same start with the true dynamics "
        "(oracle_returns in results.json: what a perfect model would give this planner)",
    )
    pets.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out (same command, same settings)",
    )
    pets.add_argument(
        "--no-progress", action="store_true", help="no live progress bar (shown only on a terminal)"
    )
    pets.set_defaults(handler=_cmd_pets)

    demo = sub.add_parser(
        "demo",
        help="a short PETS run on Pendulum-v1 that learns in a few minutes",
        description="PETS on Pendulum-v1 with the default preset: 1 seed, 1 random and 5 "
        "planned episodes. Prints the return of every episode (and what the same planner gets "
        "with the true dynamics from the same start) and writes a learning curve. "
        "Starts afresh every time (deletes a previous demo's results, plot and checkpoints).",
    )
    demo.add_argument("--out", default=DEMO_OUT, help=f"output folder (default {DEMO_OUT})")
    demo.add_argument(
        "--no-progress", action="store_true", help="no live progress bar (shown only on a terminal)"
    )
    demo.set_defaults(handler=_cmd_demo)

    from jaxmbrl.bench import SECTIONS

    bench = sub.add_parser(
        "bench",
        help="run the benchmarks (planning vs mbrl-lib, scaling, rollouts, training, "
        "end to end, devices) and write a report",
        description="Runs the scripts in benchmarks/ one after the other (each in its own "
        "process) and writes DIR/bench.json, DIR/bench.md, DIR/*.png and every section's own "
        "JSON. mbrl-lib runs in the same run where its environment exists "
        "(../shared/peers/setup.sh; PEER_TORCH names its folder). Run it on a quiet machine: "
        "the full run takes about 25 minutes on a 2-core CPU; --quick about 2.",
    )
    bench.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    bench.add_argument("--quick", action="store_true", help="smoke run: small workloads")
    bench.add_argument(
        "--only", nargs="+", choices=list(SECTIONS), default=None, help="sections to run"
    )
    bench.add_argument("--no-peer", action="store_true", help="do not run mbrl-lib")
    bench.set_defaults(handler=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxmbrl`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a bad flag (already reported in one line)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        return args.handler(args)
    except UsageError as e:
        print(f"{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        if not isinstance(e, _ReportedInterrupt):
            print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        if argv is None:
            # The process's own command line. A Ctrl-C can land while XLA still runs the
            # interrupted episode on its own threads, and finalising the interpreter under
            # them crashes ("pure virtual method called", SIGSEGV) instead of exiting 130.
            # Everything worth keeping is on disk already (checkpoints and results.json are
            # written atomically), so leave without finalising.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130


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


# --------------------------------------------------------------------------------------
# pets and demo
# --------------------------------------------------------------------------------------

# PETSConfig / RolloutConfig / TrainConfig fields and the flags that set them, so that the
# library's validation messages name what the user typed.
_FLAG_OF_FIELD = {
    "num_episodes": "--episodes",
    "num_random_episodes": "--random-episodes",
    "episode_length": "--steps",
    "horizon": "--horizon",
    "num_samples": "--population",
    "num_elites": "--elites",
    "num_iterations": "--iterations",
    "num_particles": "--particles",
    "propagation": "--propagation",
    "ensemble_size": "--ensemble-size",
    "model_elites": "--model-elites",
    "hidden_sizes": "--hidden",
    "max_epochs": "--epochs",
}


def _flag_message(message: str, given: set[str], preset: str) -> str:
    """``message`` with config field names replaced by their flags, saying which of the
    named values came from the preset rather than the command line."""
    named: list[str] = []

    def flag(match: re.Match) -> str:
        name = _FLAG_OF_FIELD[match.group(0)]
        named.append(name)
        return name

    pattern = r"\b(" + "|".join(_FLAG_OF_FIELD) + r")\b"
    text = re.sub(pattern, flag, message)
    from_preset = [n for n in dict.fromkeys(named) if n not in given]
    if from_preset:
        text += f" ({', '.join(from_preset)} from preset {preset!r})"
    return text


def _pets_config(args: argparse.Namespace):
    """The :class:`~jaxmbrl.agents.pets.PETSConfig` of ``args``: ``PETSConfig.preset`` with
    the flags the user gave as overrides (nested rollout and training configs replaced
    field by field from the preset's)."""
    from jaxmbrl.agents.pets import PETSConfig

    top = {
        "env_name": args.env,
        "num_episodes": args.episodes,
        "num_random_episodes": args.random_episodes,
        "episode_length": args.steps,
        "planner": args.planner,
        "horizon": args.horizon,
        "num_samples": args.population,
        "num_elites": args.elites,
        "num_iterations": args.iterations,
        "ensemble_size": args.ensemble_size,
        "model_elites": args.model_elites,
        "hidden_sizes": args.hidden,
    }
    top = {k: v for k, v in top.items() if v is not None}
    if args.learned_reward is not None:
        top["learned_reward"] = LEARNED_REWARD[args.learned_reward]
    rollout = {"num_particles": args.particles, "propagation": args.propagation}
    rollout = {k: v for k, v in rollout.items() if v is not None}
    train = {"max_epochs": args.epochs} if args.epochs is not None else {}
    given = {_FLAG_OF_FIELD[k] for k in (*top, *rollout, *train) if k in _FLAG_OF_FIELD}

    base = PETSConfig.preset(args.preset)
    planner = top.get("planner", base.planner)
    if planner == "auto":  # resolve it here so flag checks and the record name the real one
        from gymnax.environments import spaces

        from jaxmbrl.envs import make

        try:
            env, env_params = make(args.env)
        except Exception:  # reported, as one line, when the experiment is checked
            env = None
        if env is not None:
            discrete = isinstance(env.action_space(env_params), spaces.Discrete)
            planner = top["planner"] = "cem" if discrete else "mppi"
    # Settings the chosen planner does not have: an error when given, cleared otherwise (so
    # the recorded config does not show numbers that played no part).
    if planner not in ("cem", "icem"):
        if args.elites is not None:
            raise UsageError(f"--elites applies to --planner cem or icem, not {planner}")
        top.update(num_elites=None, alpha=None)
    if planner == "random":
        if args.iterations is not None:
            raise UsageError("--iterations does not apply to --planner random")
        top["num_iterations"] = None
    try:
        if rollout:
            top["rollout"] = dataclasses.replace(base.rollout, **rollout)
        if train:
            top["train"] = dataclasses.replace(base.train, **train)
        return PETSConfig.preset(args.preset, **top)
    except ValueError as e:
        raise UsageError(_flag_message(str(e), given, args.preset)) from None


def _check_pets(config):
    """Build the PETS functions once (unknown environment or planner, a ``module:function``
    that is missing or returns the wrong thing): a usage error, before anything is written."""
    from jaxmbrl import envs
    from jaxmbrl.agents import pets as pets_lib

    try:
        envs.make(config.env_name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # a user's ``module:function`` that fails when called
        raise UsageError(
            f"environment {config.env_name!r} failed to build: {type(e).__name__}: {e}"
        ) from None
    try:
        return pets_lib.make_pets(config)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _describe(config, pets, seeds: list[int], preset: str) -> str:
    elites = f" K={config.num_elites}" if config.num_elites is not None else ""
    iters = f" iterations={config.num_iterations}" if config.num_iterations is not None else ""
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    return (
        f"PETS on {config.env_name} (preset {preset}): {config.num_random_episodes} random + "
        f"{config.num_episodes} planned episode(s) x {pets.episode_length} steps, {seed_text}; "
        f"planner {config.planner} H={config.horizon} N={config.num_samples}{elites}{iters}, "
        f"{config.rollout.num_particles} particles {config.rollout.propagation}; ensemble "
        f"{config.ensemble_size} x {'x'.join(map(str, config.hidden_sizes))} "
        f"({config.model_elites} elites), learned reward {'on' if pets.learned_reward else 'off'}"
    )


def _plot_atomic(results: dict, path: str) -> None:
    from jaxmbrl.agents import pets as pets_lib

    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".plot-", suffix=".png")
    os.close(fd)
    try:
        pets_lib.plot_learning_curve(results, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _previous_wall_s(results_path: str) -> float:
    try:
        with open(results_path) as f:
            value = json.load(f).get("total_wall_s", 0.0)
    except (OSError, ValueError, AttributeError):
        return 0.0
    return float(value) if isinstance(value, (int, float)) else 0.0


def _run_pets(
    config,
    seeds: list[int],
    out: str,
    *,
    command: str,
    resume: bool,
    progress: bool,
    extra: dict[str, Any],
    oracle: bool = False,
) -> int:
    """Run the experiment, writing ``results.json`` after every planned episode and at the
    end, then the learning curve. Ctrl-C: one line on stderr, then
    :class:`_ReportedInterrupt` (:func:`main` exits with code 130)."""
    from jaxmbrl.agents import pets as pets_lib

    results_path = os.path.join(out, "results.json")
    plot_path = os.path.join(out, "learning_curve.png")
    start = time.perf_counter()
    machine = _versions()
    written = {"episodes": None}  # planned episodes in the results.json this process wrote
    # A resumed run's total wall time includes the earlier invocations', up to the
    # results.json they left (time spent on an episode that was interrupted is not counted).
    earlier_s = _previous_wall_s(results_path) if resume else 0.0

    def payload(results: dict) -> dict:
        return {
            "command": command,
            **extra,
            **results,
            "versions": {**results.get("versions", {}), **machine},
            "total_wall_s": earlier_s + time.perf_counter() - start,
        }

    def on_episode_end(episode: int, results: dict) -> None:
        _write_json_atomic(results_path, payload(results))
        written["episodes"] = episode + 1

    def interrupted() -> NoReturn:
        done = written["episodes"]
        kept = (
            f"results.json ({done} planned episode(s)) and the last checkpoint are"
            if done is not None
            else "the last checkpoint and results.json (if any) are"
        )
        hint = (
            "rerun the same command with --resume to continue"
            if command == "pets"
            else "run it again to start afresh"
        )
        print(f"jaxmbrl {command}: interrupted; {kept} in {out}; {hint}", file=sys.stderr)
        raise _ReportedInterrupt from None

    try:
        results = pets_lib.run(
            config,
            seeds,
            out_dir=out,
            resume=resume,
            progress=progress,
            log=lambda line: print(line, flush=True),
            on_episode_end=on_episode_end,
            oracle=oracle,
        )
    except KeyboardInterrupt:
        interrupted()
    except ValueError as e:  # raised before any episode: the folder's run does not fit
        if "already holds a run" in str(e):
            raise UsageError(
                f"--out {out!r} already holds a run; pass --resume to continue it, "
                "or choose another --out"
            ) from None
        if "different configuration" in str(e):
            raise UsageError(
                f"cannot --resume the run in {out!r}: it was started with a different "
                "configuration or seeds (use the same flags, or another --out)"
            ) from None
        raise
    try:
        _write_json_atomic(results_path, payload(results))
        _plot_atomic(results, plot_path)
    except KeyboardInterrupt:
        interrupted()

    num_seeds = len(results["episode_returns"])
    means = [sum(col) / num_seeds for col in zip(*results["episode_returns"], strict=True)]
    over = "" if num_seeds == 1 else f" (mean over {num_seeds} seeds)"
    print(f"returns per planned episode{over}: " + ", ".join(f"{r:.1f}" for r in means))
    print(f"results: {results_path}")
    print(f"learning curve: {plot_path}", flush=True)
    return 0


def _cmd_pets(args: argparse.Namespace) -> int:
    config = _pets_config(args)
    pets = _check_pets(config)
    seeds = list(range(args.seed, args.seed + args.seeds))
    if seeds[-1] >= 2**32:
        raise UsageError(
            f"seeds must be < 2**32; --seed {args.seed} --seeds {args.seeds} ends at {seeds[-1]}"
        )
    out = _prepare_out(args.out)
    print(_describe(config, pets, seeds, args.preset), flush=True)
    return _run_pets(
        config,
        seeds,
        out,
        command="pets",
        resume=args.resume,
        progress=not args.no_progress and sys.stdout.isatty(),
        extra={"preset": args.preset, "base_seed": args.seed},
        oracle=args.oracle,
    )


def _demo_config():
    """The demo's experiment (a function so that tests can swap in a tiny one)."""
    from jaxmbrl.agents.pets import PETSConfig

    return PETSConfig.preset("default", num_episodes=5)


def _check_demo_out(out: str) -> None:
    """Refuse a folder whose ``results.json`` is not a demo's (nothing there is deleted)."""
    path = os.path.join(out, "results.json")
    if not os.path.exists(path):
        return
    try:
        with open(path) as f:
            command = json.load(f).get("command")
    except (OSError, ValueError, AttributeError):
        command = None
    if command != "demo":
        raise UsageError(
            f"--out {out!r} holds results that are not a demo's; the demo would delete them, "
            "so choose another --out"
        )


def _cmd_demo(args: argparse.Namespace) -> int:
    config = _demo_config()
    pets = _check_pets(config)
    seeds = list(DEMO_SEEDS)
    _check_demo_out(args.out)
    out = _prepare_out(args.out)
    for name in DEMO_OUTPUTS:  # start afresh: a previous demo's outputs only
        path = os.path.join(out, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    print(_describe(config, pets, seeds, "default"), flush=True)
    return _run_pets(
        config,
        seeds,
        out,
        command="demo",
        resume=False,
        progress=not args.no_progress and sys.stdout.isatty(),
        extra={"preset": "default", "base_seed": seeds[0]},
        # The true-dynamics return from the same start states shows which episodes are hard
        # for the planner itself (a start hanging down costs about -350 even then).
        oracle=True,
    )


# --------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------


def _cmd_bench(args: argparse.Namespace) -> int:
    from jaxmbrl import bench

    try:
        bench.benchmarks_dir()
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    out = _prepare_out(args.out)
    report = bench.run(out, quick=args.quick, sections=args.only, peer=not args.no_peer)
    if report["failed"]:
        print(f"failed sections: {', '.join(report['failed'])}", file=sys.stderr)
        return 1
    print((pathlib.Path(out) / "bench.md").read_text())
    return 0


__all__ = ["build_parser", "main"]


if __name__ == "__main__":
    raise SystemExit(main())
