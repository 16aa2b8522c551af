"""The ``jaxmbrl`` command: one parent parser for the shared flags, one module per command.

* ``jaxmbrl mpc``: oracle MPC with the environment's own dynamics (:mod:`.mpc`).
* ``jaxmbrl pets``: a whole PETS experiment, resumable (:mod:`.pets`).
* ``jaxmbrl demo``: a short PETS run that learns in minutes (:mod:`.demo`).
* ``jaxmbrl bench``: the benchmarks of a source checkout (:mod:`.bench`).

Bad input (unknown environment or planner, a count below 1, inconsistent settings, an
unwritable ``--out``) prints one ``jaxmbrl COMMAND: error: ...`` line on stderr and exits
with code 2, before any work and without creating the output folder or writing results;
so does an ``--out`` that a live run holds (:func:`jaxmbrl.runner.lock_output`). A run that
cannot go on (every transition of an episode non-finite, a diverging model, a full disk)
prints one ``jaxmbrl COMMAND: stopped: ...`` line and exits with code 1, keeping the results
and checkpoints of the episodes before.
"""

from __future__ import annotations

import os
import sys

from jaxmbrl.cli import bench, common, demo, mpc, pets


def build_parser() -> common.Parser:
    """The argument parser of the ``jaxmbrl`` command (subcommands as sub-parsers)."""
    parser = common.Parser(prog="jaxmbrl", description="JAX planning engine for model-based RL.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub._parser_class = common.Parser  # one-line errors in every sub-parser too
    shared = [common.run_flags(), common.planner_flags()]
    for command in (mpc, pets, demo, bench):
        command.add_parser(sub, shared)
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
    except common.UsageError as e:
        print(f"{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except common.RunFailed as e:
        print(f"{parser.prog} {args.command}: stopped: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        if not isinstance(e, common.ReportedInterrupt):
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


__all__ = ["build_parser", "main"]
