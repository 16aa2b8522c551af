"""What every command shares: one-line errors, flag types, the parent parsers, the output
folder, and turning planner flags into a :class:`~jaxmbrl.planners.registry.PlannerSpec`.

Flags are parsed here and turned into the library's typed configs; library code never sees
them. Bad input prints one ``jaxmbrl COMMAND: error: ...`` line and exits with code 2,
before any work and without creating the output folder.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import errno
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from typing import Any, NoReturn

from jaxmbrl.planners import registry


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr, exit code 2."""


class RunFailed(Exception):
    """A run that could not go on (bad data, a diverging model, a full disk): reported as one
    line on stderr, exit code 1; the results and checkpoints written before are kept."""


class ReportedInterrupt(KeyboardInterrupt):
    """A Ctrl-C whose one-line message has already been printed."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {low}, got {text!r}"
            ) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def hidden_sizes(text: str) -> tuple[int, ...]:
    """``"200,200"`` -> ``(200, 200)``."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers >= 1 such as 200,200,200, got {text!r}"
        )
    return sizes


def planner_option(text: str) -> tuple[str, Any]:
    """``"temperature=0.5"`` -> ``("temperature", 0.5)``: ints, floats, ``true``/``false``
    and Python literals are parsed; anything else stays a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip() or not raw.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE such as temperature=0.5, got {text!r}"
        )
    raw = raw.strip()
    if raw.lower() in ("true", "false"):
        return name.strip(), raw.lower() == "true"
    try:
        return name.strip(), ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return name.strip(), raw


def _planner_options_help() -> str:
    lines = []
    for kind, discrete in (("continuous", False), ("discrete", True)):
        for name in registry.planner_names(discrete):
            options = ", ".join(registry.options_of(name, discrete))
            lines.append(f"  {name} ({kind} actions): {options}")
    return "planner options (--planner-opt NAME=VALUE):\n" + "\n".join(lines)


PLANNER_OPTIONS_HELP = _planner_options_help()


def run_flags() -> argparse.ArgumentParser:
    """The parent parser of the flags every experiment command takes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--env",
        required=True,
        help="environment name: a gymnax id (Pendulum-v1), package.module:function, "
        "playground:<Task> (playground:CheetahRun), brax:<name>[@backend] (brax:hopper on "
        "spring, brax:hopper@positional) or gymnasium:<id> (gymnasium:HalfCheetah-v5: steps "
        "on the host, so not for mpc or --oracle); the last three need the mujoco extra "
        "(pip install 'jaxmbrl[mujoco]')",
    )
    p.add_argument("--seeds", type=positive_int, default=1, help="S seeds (default 1)")
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="base seed: seeds are base..base+S-1"
    )
    p.add_argument(
        "--steps", type=positive_int, default=None, help="episode length (default: the env's)"
    )
    return p


def planner_flags() -> argparse.ArgumentParser:
    """The parent parser of the planner flags (every planner option is reachable)."""
    p = argparse.ArgumentParser(add_help=False)
    names = ("auto", *registry.planner_names())
    p.add_argument(
        "--planner",
        choices=names,
        default=None,
        help="auto (iCEM for continuous, CEM for discrete actions), random, cem, icem or mppi "
        "(random and cem on discrete-action environments)",
    )
    p.add_argument("--horizon", type=positive_int, default=None, help="H, imagined steps")
    p.add_argument("--population", type=positive_int, default=None, help="N candidates")
    p.add_argument("--elites", type=positive_int, default=None, help="CEM/iCEM elites K")
    p.add_argument(
        "--iterations", type=positive_int, default=None, help="planner iterations per step"
    )
    p.add_argument(
        "--planner-opt",
        type=planner_option,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any option of the chosen planner (repeatable), e.g. temperature=0.5; the list "
        "of options is at the end of this help",
    )
    return p


# Planner flags and the PlannerSpec options they set.
PLANNER_FLAG_OPTIONS = {
    "--population": "num_samples",
    "--elites": "num_elites",
    "--iterations": "num_iterations",
}


def given_planner_options(args: argparse.Namespace) -> dict[str, Any]:
    """The planner options the command line set (flags and ``--planner-opt``), by option."""
    options = dict(args.planner_opt)
    for flag, option in PLANNER_FLAG_OPTIONS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            if option in options:
                raise UsageError(f"{flag} and --planner-opt {option}=... both set {option}")
            options[option] = value
    return options


def planner_spec(
    base: registry.PlannerSpec, args: argparse.Namespace, discrete: bool
) -> registry.PlannerSpec:
    """``base`` with the command line's planner flags applied and ``"auto"`` resolved for
    the action kind. Options the chosen planner does not take are an error when given on
    the command line and dropped when they came from ``base`` (a preset)."""
    given = given_planner_options(args)
    name = args.planner or base.name
    try:
        name = registry.resolve(name, discrete)
    except ValueError as e:
        raise UsageError(str(e)) from None
    taken = registry.options_of(name, discrete)
    bad = sorted(k for k in given if k not in taken)
    if bad:
        flags = [next((f for f, o in PLANNER_FLAG_OPTIONS.items() if o == k), k) for k in bad]
        raise UsageError(
            f"planner {name!r} does not take {', '.join(flags)}; its options are {', '.join(taken)}"
        )
    options = {k: v for k, v in base.options if k in taken} | given
    try:
        return registry.PlannerSpec(name, args.horizon or base.horizon, options)
    except ValueError as e:
        raise UsageError(str(e)) from None


def flag_message(message: str, flags: dict[str, str], given: set[str], preset: str) -> str:
    """``message`` with config field names replaced by their ``flags``, saying which of the
    named values came from the preset rather than the command line."""
    named: list[str] = []

    def flag(match: re.Match) -> str:
        named.append(flags[match.group(0)])
        return flags[match.group(0)]

    text = re.sub(r"\b(" + "|".join(map(re.escape, flags)) + r")\b", flag, message)
    from_preset = [n for n in dict.fromkeys(named) if n not in given]
    if from_preset:
        text += f" ({', '.join(from_preset)} from preset {preset!r})"
    return text


def prepare_out(out: str) -> str:
    """Create ``out`` if needed and check that a file can be written there."""
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-", delete=True):
            pass
    except OSError as e:
        raise UsageError(f"cannot write to --out {out!r}: {e.strerror or e}") from None
    return out


def out_in_use(out: str, pid: int | None) -> UsageError:
    """The error for an ``--out`` that a live run holds (``pid``: its process, if known)."""
    holder = "" if pid is None else f" (pid {pid})"
    return UsageError(
        f"--out {out!r} is in use by a running jaxmbrl process{holder}; wait for it or "
        "choose another --out"
    )


# A write that failed for want of space (disk, quota, file size limit).
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_failed(out: str, error: OSError, kept: str, then: str) -> RunFailed:
    """The one-line failure of a write into ``out``: the reason, what is ``kept``, the
    remedy (free some space, or make the folder writable) and ``then`` what to do."""
    remedy = "free some space" if error.errno in NO_SPACE else "make it writable"
    reason = error.strerror or str(error)
    return RunFailed(f"cannot write to {out!r} ({reason}); {kept}; {remedy} and {then}")


@contextlib.contextmanager
def orbax_errors_unlogged() -> Iterator[None]:
    """Inside, orbax's logged tracebacks are dropped: a failed checkpoint save (a full disk)
    logs one per background thread, then raises the same error, which the command reports
    in one line. Orbax's other messages still show."""

    def keep(record: logging.LogRecord) -> bool:
        return not (record.exc_info and f"{os.sep}orbax{os.sep}" in record.pathname)

    logger = logging.getLogger("absl")  # orbax logs through absl's logger
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def require_jax_env(name: str, env: Any, what: str) -> None:
    """A usage error when ``env`` steps on the host: ``what`` needs its true dynamics."""
    from jaxmbrl.envs.host import no_oracle_message, steps_on_host

    if steps_on_host(env):
        raise UsageError(no_oracle_message(name, what))


def load_env(name: str, steps: int | None):
    """``jaxmbrl.envs.load(name, steps)``, with failures as one-line usage errors."""
    from jaxmbrl import envs

    try:
        return envs.load(name, steps)
    except ValueError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # a user's ``module:function`` that fails when called
        raise UsageError(f"environment {name!r} failed to build: {type(e).__name__}: {e}") from None
