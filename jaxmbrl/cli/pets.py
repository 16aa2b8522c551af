"""``jaxmbrl pets``: a whole PETS experiment from the command line.

Random seeding episodes, then ``E`` planned episodes, seeds as one vmapped program. A live
bar per episode, one line per episode, a checkpoint and ``DIR/results.json`` (written
atomically) after every episode, and ``DIR/learning_curve.png`` at the end. ``--resume``
continues an interrupted run (Ctrl-C: exit 130) with the same results as an uninterrupted
one. ``--preset mbrl-lib`` starts from mbrl-lib's PETS defaults; explicit flags override it.
One run at a time holds ``DIR`` (another is refused, exit 2); a failed write there (a full
disk) stops the run with one line (exit 1), keeping the last checkpoint for ``--resume``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, NoReturn

from jaxmbrl.cli import common

PRESETS = ("default", "mbrl-lib")
LEARNED_REWARD = {"auto": None, "on": True, "off": False}

# Flags of the model, rollout and training configs, by the field each one sets (so that
# the library's validation messages name what the user typed). Planner flags: common.py.
MODEL_FLAGS = {
    "num_members": "--ensemble-size",
    "num_elites": "--model-elites",
    "hidden_sizes": "--hidden",
}
ROLLOUT_FLAGS = {"num_particles": "--particles", "propagation": "--propagation"}
TRAIN_FLAGS = {"max_epochs": "--epochs"}
TOP_FLAGS = {
    "num_episodes": "--episodes",
    "num_random_episodes": "--random-episodes",
    "episode_length": "--steps",
    "reward_model": "--reward-model",
    "planning_matmul_dtype": "--planning-dtype",
}
PLANNER_FLAGS = {v: k for k, v in common.PLANNER_FLAG_OPTIONS.items()} | {"horizon": "--horizon"}


def add_parser(sub, parents) -> None:
    from jaxmbrl.rollouts import PROPAGATIONS

    p = sub.add_parser(
        "pets",
        parents=parents,
        help="PETS: learn an ensemble model and plan through it (Chua et al. 2018)",
        description="A whole PETS experiment: random seeding episodes, then E planned episodes "
        "(train the ensemble on all real data, run one MPC episode through it). Seeds run as "
        "one vmapped program. Settings not given come from --preset; explicit flags override "
        "it. Writes DIR/results.json after every episode, a checkpoint per episode in "
        "DIR/checkpoints (--resume continues from it) and DIR/learning_curve.png at the end.",
        epilog=common.PLANNER_OPTIONS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder (results, plot, checkpoints)")
    p.add_argument(
        "--episodes",
        type=common.positive_int,
        default=None,
        help="E planned episodes, after the random ones (default: the preset's, 10)",
    )
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default="default",
        help="default (tuned to learn Pendulum-v1 in minutes) or mbrl-lib (mbrl-lib 0.2.0's "
        "PETS defaults); explicit flags override it",
    )
    add = p.add_argument
    add("--particles", type=common.positive_int, default=None, help="P particles per candidate")
    add("--propagation", choices=PROPAGATIONS, default=None, help="ts1, tsinf or expectation")
    add("--ensemble-size", type=common.positive_int, default=None, help="E ensemble members")
    add(
        "--model-elites",
        type=common.positive_int,
        default=None,
        help="members that propagate particles (<= --ensemble-size)",
    )
    add(
        "--hidden",
        type=common.hidden_sizes,
        default=None,
        metavar="W1,W2,...",
        help="hidden layer widths of each member, e.g. 200,200,200",
    )
    add(
        "--learned-reward",
        choices=tuple(LEARNED_REWARD),
        default=None,
        help="learn the reward with the model: auto (only when the environment has no known "
        "reward function), on or off",
    )
    add(
        "--reward-model",
        choices=("separate", "joint"),
        default=None,
        help="how a learned reward is learned: separate (a second ensemble r(obs, action, "
        "next_obs); the default preset's) or joint (an output of the dynamics ensemble; "
        "mbrl-lib's)",
    )
    add(
        "--planning-dtype",
        choices=("auto", "float32", "bfloat16"),
        default=None,
        help="the model's matmul operands while planning: float32 (the default preset's), "
        "bfloat16 (float32 accumulation) or auto (the mbrl-lib preset's: bfloat16 where its "
        "layers run through oneDNN on this machine, else float32)",
    )
    add("--random-episodes", type=common.positive_int, default=None, help="random episodes")
    add("--epochs", type=common.positive_int, default=None, help="most training epochs")
    add(
        "--oracle",
        action="store_true",
        help="also plan each episode from the same start with the true dynamics "
        "(oracle_returns in results.json: what a perfect model would give this planner)",
    )
    add("--resume", action="store_true", help="continue the interrupted run in --out")
    add("--no-progress", action="store_true", help="no live progress bar (only on a terminal)")
    p.set_defaults(handler=run)


def _given(args: argparse.Namespace, names: dict[str, str]) -> dict[str, Any]:
    """``{field: value}`` for the flags of ``names`` that the command line set."""
    values = {f: getattr(args, flag[2:].replace("-", "_")) for f, flag in names.items()}
    return {f: v for f, v in values.items() if v is not None}


def _part(build, flags: dict[str, str], given: dict[str, Any], preset: str):
    """``build()``, its ``ValueError`` as a usage error naming the flags."""
    try:
        return build()
    except ValueError as e:
        given_flags = {flags[f] for f in given if f in flags}
        raise common.UsageError(common.flag_message(str(e), flags, given_flags, preset)) from None


def pets_config(args: argparse.Namespace):
    """The :class:`~jaxmbrl.agents.pets.PETSConfig` of ``args``: the preset with the flags the
    user gave as overrides, part by part (planner, model, rollout, training)."""
    from jaxmbrl.agents.pets import PETSConfig

    base = PETSConfig.preset(args.preset)
    spec, env = common.load_env(args.env, args.steps)
    if args.oracle:
        common.require_jax_env(args.env, env, "--oracle")
    planner = common.planner_spec(base.planner, args, spec.action.is_discrete)
    preset, replace = args.preset, dataclasses.replace
    model_given = _given(args, MODEL_FLAGS)
    model = _part(lambda: replace(base.model, **model_given), MODEL_FLAGS, model_given, preset)
    rollout_given = _given(args, ROLLOUT_FLAGS)
    rollout = _part(
        lambda: replace(base.rollout, **rollout_given), ROLLOUT_FLAGS, rollout_given, preset
    )
    train_given = _given(args, TRAIN_FLAGS)
    train = _part(lambda: replace(base.train, **train_given), TRAIN_FLAGS, train_given, preset)
    top = _given(args, TOP_FLAGS)
    if args.learned_reward is not None:
        top["learned_reward"] = LEARNED_REWARD[args.learned_reward]
    parts = dict(planner=planner, model=model, rollout=rollout, train=train)
    return _part(lambda: replace(base, env_name=args.env, **parts, **top), TOP_FLAGS, top, preset)


def check(config, args: argparse.Namespace | None = None, preset: str = "default"):
    """Resolve the experiment once (a planner option out of range, inconsistent settings):
    a usage error naming the flags, before anything is written."""
    from jaxmbrl.agents import pets as pets_lib

    given = set()
    if args is not None:
        given = {f for f in PLANNER_FLAGS.values() if getattr(args, f[2:]) is not None}
    try:
        return pets_lib.pets_setup(config)
    except ValueError as e:
        message = common.flag_message(str(e), PLANNER_FLAGS, given, preset)
        raise common.UsageError(message) from None


def describe(config, setup, seeds: list[int], preset: str) -> str:
    """One line saying what will run."""
    planner = config.planner
    options = " ".join(f"{k}={v}" for k, v in planner.options)
    model = config.model
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    return (
        f"PETS on {config.env_name} (preset {preset}): {config.num_random_episodes} random + "
        f"{config.num_episodes} planned episode(s) x {setup.env.episode_length} steps, "
        f"{seed_text}; planner {planner.name} H={planner.horizon} {options}, "
        f"{config.rollout.num_particles} particles {config.rollout.propagation}; ensemble "
        f"{model.num_members} x {'x'.join(map(str, model.hidden_sizes))} "
        f"({model.num_elites} elites), learned reward {'on' if setup.learned_reward else 'off'}, "
        f"planning matmuls {setup.planning_matmul_dtype}"
    )


def _previous_wall_s(results_path: str) -> float:
    try:
        with open(results_path) as f:
            value = json.load(f).get("total_wall_s", 0.0)
    except (OSError, ValueError, AttributeError):
        return 0.0
    return float(value) if isinstance(value, (int, float)) else 0.0


def run_experiment(
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
    :class:`~jaxmbrl.cli.common.ReportedInterrupt` (exit code 130)."""
    from jaxmbrl import reporting, runner
    from jaxmbrl.experiments import run_pets

    results_path = os.path.join(out, "results.json")
    plot_path = os.path.join(out, "learning_curve.png")
    start = time.perf_counter()
    written: list[int] = []  # planned episodes in the results.json this process wrote
    # A resumed run's total wall time includes the earlier invocations', up to the
    # results.json they left (time spent on an episode that was interrupted is not counted).
    earlier_s = _previous_wall_s(results_path) if resume else 0.0

    def payload(results: dict) -> dict:
        total = earlier_s + time.perf_counter() - start
        return {"command": command, **extra, **results, "total_wall_s": total}

    def on_episode_end(episode: int, results: dict) -> None:
        reporting.write_json(results_path, payload(results))
        written.append(episode + 1)

    try:
        with common.orbax_errors_unlogged():  # a failed save is reported below, in one line
            results = run_pets(
                config,
                seeds,
                out_dir=out,
                resume=resume,
                progress=progress,
                oracle=oracle,
                log=lambda line: print(line, flush=True),
                on_iteration_end=on_episode_end,
            )
        try:  # the run is complete: its last checkpoint is kept whatever fails here
            reporting.write_json(results_path, payload(results))
            reporting.plot_learning_curve(results, plot_path)
        except OSError as e:
            raise runner.OutputWriteError(out, config.num_episodes, e) from e
    except KeyboardInterrupt:
        _interrupted(command, out, written[-1] if written else None)
    except runner.RunStopped as e:
        kept = (
            f"results.json and the checkpoint after planned episode {written[-1]} are kept"
            if written
            else "the last checkpoint and results.json (if any) are kept"
        )
        raise common.RunFailed(f"{e}; {kept} in {out}") from None
    except runner.RunExistsError:
        raise common.UsageError(
            f"--out {out!r} already holds a run; pass --resume to continue it, "
            "or choose another --out"
        ) from None
    except runner.ResumeMismatchError:
        raise common.UsageError(
            f"cannot --resume the run in {out!r}: it was started with a different "
            "configuration or seeds (use the same flags, or another --out)"
        ) from None
    except runner.OutputLockedError as e:
        raise common.out_in_use(out, e.pid) from None
    except runner.OutputWriteError as e:
        then = "rerun with --resume" if command == "pets" else "run it again"
        raise common.write_failed(out, e, _kept_checkpoint(e.step), then) from None
    num_seeds = len(results["episode_returns"])
    columns = zip(*results["episode_returns"], strict=True)  # None: not finite
    means = [None if None in col else sum(col) / num_seeds for col in columns]
    over = "" if num_seeds == 1 else f" (mean over {num_seeds} seeds)"
    text = ", ".join("not finite" if r is None else f"{r:.1f}" for r in means)
    print(f"returns per planned episode{over}: {text}")
    print(f"results: {results_path}")
    print(f"learning curve: {plot_path}", flush=True)
    return 0


def _kept_checkpoint(step: int | None) -> str:
    """What a run that stopped keeps, by its last complete checkpoint (0: the random
    episodes'; ``k``: planned episode ``k``'s)."""
    if step is None:
        return "no checkpoint was written"
    after = "the random episodes" if step == 0 else f"planned episode {step}"
    return f"the checkpoint after {after} is kept"


def _interrupted(command: str, out: str, done: int | None) -> NoReturn:
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
    raise common.ReportedInterrupt from None


def run(args: argparse.Namespace) -> int:
    config = pets_config(args)
    setup = check(config, args, args.preset)
    seeds = list(range(args.seed, args.seed + args.seeds))
    if seeds[-1] >= 2**32:
        raise common.UsageError(
            f"seeds must be < 2**32; --seed {args.seed} --seeds {args.seeds} ends at {seeds[-1]}"
        )
    out = common.prepare_out(args.out)
    print(describe(config, setup, seeds, args.preset), flush=True)
    return run_experiment(
        config,
        seeds,
        out,
        command="pets",
        resume=args.resume,
        progress=not args.no_progress and sys.stdout.isatty(),
        extra={"preset": args.preset, "base_seed": args.seed},
        oracle=args.oracle,
    )
