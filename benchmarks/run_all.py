#!/usr/bin/env python
"""Run every benchmark section of ``benchmarks/`` and write one report.

Each section is one script, run in its own process (so one section's compiled programs and
memory do not colour the next), which writes its JSON into the output folder:

============  ===========================  ==============================================
section       script                       measures
============  ===========================  ==============================================
planning      ``bench_planning.py``        planner throughput on the peer workloads,
                                           float32 and bfloat16, mbrl-lib in the same run
scaling       ``bench_scaling.py``         transitions/s, memory, compile time vs N, P,
                                           H, ensemble size, batch of planners
rollouts      ``bench_rollouts.py``        true-environment (gymnax) rollouts/s
physics       ``bench_physics.py``         true-physics rollouts/s of the MuJoCo families
                                           (Playground, Brax) and gymnasium's host rate
training      ``bench_training.py``        model training samples/s vs mbrl-lib
end_to_end    ``bench_pets_episode.py``    seconds per PETS episode (vs mbrl-lib) and
                                           per whole run
devices       ``bench_devices.py``         1 -> 2 devices through ``jax.sharding``
============  ===========================  ==============================================

:func:`run` then writes ``bench.json`` (every section's results, the machine record, the
command), ``bench.md`` (the tables) and PNG plots. Every figure is a median with min and max
over repeats after compilation. The mbrl-lib columns are filled when the peer environment
(``PEER_TORCH``, default ``/tmp/peer-torch``) exists and ``--no-peer`` is not given.

Run: ``python benchmarks/run_all.py --out DIR [--quick] [--only SECTION ...] [--no-peer]``
(``jaxmbrl bench`` runs this script). It prints ``bench.md`` at the end. Exit codes: 0 when
every section ran, 1 when a section failed (they are listed on stderr), 2 for bad arguments
(one line on stderr, nothing run and no folder created), 130 when interrupted.
Run it on a quiet machine: the full run takes about 30 minutes on a 2-core CPU, ``--quick``
about 2.5.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import fmt

from jaxmbrl import reporting

HERE = pathlib.Path(__file__).resolve().parent

SECTIONS = {
    "planning": ("bench_planning.py", "planning.json"),
    "scaling": ("bench_scaling.py", "scaling.json"),
    "rollouts": ("bench_rollouts.py", "rollouts.json"),
    "physics": ("bench_physics.py", "physics.json"),
    "training": ("bench_training.py", "bench_training.json"),
    "end_to_end": ("bench_pets_episode.py", "pets_episode.json"),
    "devices": ("bench_devices.py", "devices.json"),
}
# Sections that compare with mbrl-lib and take ``--no-peer``.
PEER_SECTIONS = ("planning", "training", "end_to_end")


def run(
    out_dir: str | os.PathLike,
    *,
    quick: bool = False,
    sections: Sequence[str] | None = None,
    peer: bool = True,
    log: Callable[[str], None] | None = print,
    command: str | None = None,
) -> dict:
    """Run the benchmark sections and write ``bench.json``, ``bench.md`` and the plots.

    Args:
      out_dir: output folder (created, after the section names are checked).
      quick: smoke mode: every script with ``--quick`` (small workloads, few repeats;
        about 2.5 minutes in all on a 2-core CPU).
      sections: a subset of :data:`SECTIONS` (default: all, in that order).
      peer: also run mbrl-lib where a section compares with it (when its environment exists).
      log: where the scripts' output lines go (``None``: silent).
      command: the command line recorded in the report (default: this process's).

    Returns:
      The report dict written to ``bench.json``: ``{"sections": {name: script JSON},
      "failed": {name: output tail}, "seconds": {name: wall seconds}, "machine": the first
      section's machine record, "command", "quick"}``.

    Raises:
      ValueError: an unknown section name (before anything is run or created).
    """
    names = list(dict.fromkeys(sections or SECTIONS))
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown bench sections {unknown}; choose from {list(SECTIONS)}")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "command": command if command is not None else shlex.join(sys.argv),
        "quick": quick,
        "sections": {},
        "failed": {},
        "seconds": {},
    }
    for name in names:
        script, result_file = SECTIONS[name]
        cmd = [sys.executable, str(HERE / script), "--out", str(out)]
        if quick:
            cmd.append("--quick")
        if not peer and name in PEER_SECTIONS:
            cmd.append("--no-peer")
        if log:
            log(f"== {name}: {shlex.join(cmd[1:])}")
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail, line.rstrip()][-40:]
            if log:
                log("   " + line.rstrip())
        code = proc.wait()
        report["seconds"][name] = time.perf_counter() - t0
        path = out / result_file
        if code != 0 or not path.exists():
            report["failed"][name] = "\n".join(tail)
            if log:
                log(f"!! {name} failed (exit {code})")
            continue
        report["sections"][name] = json.loads(path.read_text())
    report["machine"] = next(
        (s["machine"] for s in report["sections"].values() if s.get("machine")), None
    )
    reporting.write_json(out / "bench.json", report)
    (out / "bench.md").write_text(markdown(report))
    plots(report, out)
    if log:
        log(f"wrote {out / 'bench.json'}, {out / 'bench.md'} and plots")
    return report


def _md_planning(p: dict) -> list[str]:
    from bench_planning import markdown as planning_md

    return [
        "## Planning (seconds per planning call; speed-up = mbrl-lib / jaxmbrl)",
        "",
        planning_md(p),
    ]


def _md_end_to_end(e: dict) -> list[str]:
    peer = e.get("mbrl_lib") or {}
    lines = ["## End to end (mbrl-lib preset PETS episode)", ""]
    lines += ["| precision | episode s (median of runs) | mbrl-lib s | speed-up |"]
    lines += ["|---|---|---|---|"]
    for dtype, r in e["jaxmbrl"].items():
        sp = r.get("speedup_vs_mbrl_lib")
        lines.append(
            f"| {dtype} | {r['episode_median_s']:.1f} ({e['steps']} steps) | "
            f"{peer.get('total_s', float('nan')):.1f} | " + (f"{sp:.2f}x |" if sp else "n/a |")
        )
    if "full_run" in e:
        fr = e["full_run"]
        lines += [
            "",
            f"Whole default PETS run ({fr['env']}, 1 seed, {fr['planned_episodes']} planned "
            f"episodes, compile + training included): {fr['seconds']:.1f} s "
            f"({fr['seconds_per_planned_episode']:.1f} s per planned episode).",
        ]
    lines.append("")
    return lines


def _md_training(t: dict) -> list[str]:
    js = t["jaxmbrl"]["samples_per_s"]
    peer = t.get("mbrl_lib") or {}
    ratio = t.get("ratio_jaxmbrl_over_mbrl_lib")
    return [
        "## Model training (samples/s)",
        "",
        f"jaxmbrl {fmt(js, 0)}; mbrl-lib "
        + (f"{peer['samples_per_s_median']:,.0f}" if "samples_per_s_median" in peer else "n/a")
        + (f"; ratio {ratio:.2f}x" if ratio else ""),
        "",
    ]


def _md_rollouts(ro: dict) -> list[str]:
    lines = ["## True-environment rollouts (env-steps/s)", ""]
    lines += ["| env | method | B | H | ms per batch | env-steps/s | compile s |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for r in ro["rows"]:
        lines.append(
            f"| {r['env']} | {r['method']} | {r['batch']} | {r['horizon']} | "
            f"{fmt(r['ms_per_batch'])} | {r['env_steps_per_s']:,.0f} | "
            f"{r['compile_s']:.2f} |"
        )
    lines.append("")
    return lines


def _md_physics(ph: dict) -> list[str]:
    lines = ["## True-physics rollouts (env-steps/s; gymnasium: one env on the host)", ""]
    lines += ["| env | B | H | ms per batch | env-steps/s | compile s (reset) |"]
    lines += ["|---|---|---|---|---|---|"]
    for r in ph["rows"]:
        compile_s = (
            f"{r['compile_s']:.1f} ({r['reset_compile_s']:.1f})" if "compile_s" in r else "-"
        )
        lines.append(
            f"| {r['env']} | {r['batch']} | {r['horizon']} | {fmt(r['ms_per_batch'])} | "
            f"{r['env_steps_per_s']:,.0f} | {compile_s} |"
        )
    if ph["skipped"]:
        lines += ["", *(f"* skipped {name}: {why}" for name, why in ph["skipped"].items())]
    lines.append("")
    return lines


def _md_scaling(s: dict) -> list[str]:
    lines = [f"## Scaling (base {s['base']}, {s['matmul_dtype']})", ""]
    lines += ["| axis | value | s/call | transitions/s | compile s | memory MiB |"]
    lines += ["|---|---|---|---|---|---|"]
    for axis, points in s["curves"].items():
        for p in points:
            lines.append(
                f"| {axis} | {p['value']} | {fmt(p['seconds'], 4)} | "
                f"{p['transitions_per_s']:,.0f} | {p['compile_s']:.2f} | "
                f"{p['memory_mib'] or 0:.1f} |"
            )
    lines.append("")
    return lines


def _sci(value: float | None) -> str:
    """``value`` as ``%.1e``; ``None`` (a non-finite value in the JSON) as ``n/a``."""
    return "n/a" if value is None else f"{value:.1e}"


def _md_devices(d: dict) -> list[str]:
    lines = ["## Devices (jax.sharding; CPU devices share the same cores)", ""]
    lines += ["| devices | workload | s/call | speed-up vs first | max action diff |"]
    lines += ["|---|---|---|---|---|"]
    for r in d["runs"]:
        for part in ("candidates", "seeds"):
            p = r[part]
            lines.append(
                f"| {r['devices']} | {part} | {fmt(p['seconds'])} | "
                f"{p['speedup_vs_first']:.2f}x | {_sci(p['max_action_diff_vs_first'])} |"
            )
    lines.append("")
    return lines


# Report sections in the order :func:`markdown` writes them: name -> lines for its JSON.
MARKDOWN_SECTIONS: dict[str, Callable[[dict], list[str]]] = {
    "planning": _md_planning,
    "end_to_end": _md_end_to_end,
    "training": _md_training,
    "rollouts": _md_rollouts,
    "physics": _md_physics,
    "scaling": _md_scaling,
    "devices": _md_devices,
}


def _md_machine(report: dict) -> list[str]:
    m = report.get("machine") or {}
    if not m:
        return []
    return [
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, backend {m.get('backend')} "
        f"({m.get('device')}), jax {m.get('jax')}, jaxlib {m.get('jaxlib')}, "
        f"Python {m.get('python')}. Command: `{report['command']}`"
        + (" (quick mode: smoke figures only)" if report["quick"] else ""),
        "",
    ]


def markdown(report: dict) -> str:
    """The report's tables as markdown."""
    lines = ["# jaxmbrl bench", ""]
    lines += _md_machine(report)
    sec = report["sections"]
    for name, section_md in MARKDOWN_SECTIONS.items():
        if name in sec:
            lines += section_md(sec[name])
    if report["failed"]:
        lines += ["## Failed sections", ""]
        lines += [f"* {name}" for name in report["failed"]]
    lines += ["", "Section wall times: "]
    lines[-1] += ", ".join(f"{k} {v:.0f} s" for k, v in report["seconds"].items())
    return "\n".join(lines) + "\n"


def _plot_planning(planning: dict, out: pathlib.Path) -> pathlib.Path | None:
    rows = planning["rows"]
    if not rows:
        return None

    def draw_planning(ax) -> None:
        dtypes = list(rows[0]["jaxmbrl"])
        width = 0.8 / len(dtypes)
        for i, d in enumerate(dtypes):
            tps = [r["jaxmbrl"][d]["transitions_per_s"] / 1e6 for r in rows]
            x = [j + i * width for j in range(len(rows))]
            ax.bar(x, tps, width, label=f"jaxmbrl {d}")
        peer = [
            (j, r["mbrl_lib"]["transitions_per_call"] / r["mbrl_lib"]["seconds"]["median"])
            for j, r in enumerate(rows)
            if r.get("mbrl_lib") and "seconds" in r["mbrl_lib"]
        ]
        if peer:
            ax.bar(
                [j + len(dtypes) * width for j, _ in peer],
                [v / 1e6 for _, v in peer],
                width,
                label="mbrl-lib (tuned malloc)",
                color="grey",
            )
        ax.set_xticks([j + width * len(dtypes) / 2 for j in range(len(rows))])
        ax.set_xticklabels([r["workload"] for r in rows], rotation=30, ha="right")
        ax.set_ylabel("imagined transitions / s (millions)")
        ax.set_title("Planning throughput, same run")
        ax.legend()

    path = out / "planning.png"
    reporting.save_figure(path, draw_planning, figsize=(9, 4))
    return path


def _plot_scaling(scaling: dict, out: pathlib.Path) -> pathlib.Path | None:
    curves = scaling["curves"]

    def draw_scaling(axes) -> None:
        for i, (axis, points) in enumerate(curves.items()):
            xs = [p["value"] for p in points]
            axes[0, i].plot(xs, [p["transitions_per_s"] / 1e6 for p in points], "o-")
            axes[0, i].set_title(axis)
            axes[0, i].set_ylim(bottom=0)
            axes[1, i].plot(xs, [p["compile_s"] for p in points], "s-", label="compile s")
            memory = [(p["memory_mib"] or 0) / 100 for p in points]
            axes[1, i].plot(xs, memory, "^-", label="memory / 100 MiB")
            axes[1, i].set_xlabel(axis)
            axes[1, i].set_ylim(bottom=0)
            if len(xs) > 1 and max(xs) / max(min(xs), 1) > 10:
                axes[0, i].set_xscale("log")
                axes[1, i].set_xscale("log")
        axes[0, 0].set_ylabel("M transitions / s")
        axes[1, 0].legend(fontsize=7)

    path = out / "scaling.png"
    reporting.save_figure(
        path,
        draw_scaling,
        nrows=2,
        ncols=len(curves),
        figsize=(3.2 * len(curves), 5.5),
        squeeze=False,
    )
    return path


def _plot_rollouts(rollouts: dict, out: pathlib.Path) -> pathlib.Path | None:
    rows = [r for r in rollouts["rows"] if r["env"] == "Pendulum-v1"]

    def draw_rollouts(ax) -> None:
        for method in dict.fromkeys(r["method"] for r in rows):
            pts = [(r["batch"], r["env_steps_per_s"]) for r in rows if r["method"] == method]
            ax.plot([b for b, _ in pts], [v for _, v in pts], "o-", label=method)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch B (environments)")
        ax.set_ylabel("env-steps / s")
        ax.set_title("Pendulum-v1 true-environment rollouts")
        ax.legend(fontsize=8)

    path = out / "rollouts.png"
    reporting.save_figure(path, draw_rollouts, figsize=(6, 4))
    return path


# Figures in the order :func:`plots` draws them: section name -> draws its PNG (or None).
PLOT_SECTIONS: dict[str, Callable[[dict, pathlib.Path], pathlib.Path | None]] = {
    "planning": _plot_planning,
    "scaling": _plot_scaling,
    "rollouts": _plot_rollouts,
}


def plots(report: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """``planning.png`` (throughput), ``scaling.png`` and ``rollouts.png``, where measured."""
    written = []
    sec = report["sections"]
    for name, plot in PLOT_SECTIONS.items():
        if name in sec:
            path = plot(sec[name], out)
            if path is not None:
                written.append(path)
    return written


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="run_all",
        description="Runs the benchmark scripts of benchmarks/ one after the other (each in "
        "its own process) and writes DIR/bench.json, DIR/bench.md, DIR/*.png and every "
        "section's own JSON. mbrl-lib runs in the same run where the peer environment exists "
        "(PEER_TORCH, default /tmp/peer-torch). Run it on a quiet machine: the full run takes "
        "about 30 minutes on a 2-core CPU; --quick about 2.5. Exit codes: 0 all sections ran, "
        "1 a section failed, 2 bad arguments.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small workloads")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(SECTIONS),
        default=None,
        metavar="SECTION",
        help=f"sections to run, of {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--no-peer", action="store_true", help="do not run mbrl-lib")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks from the command line; returns the exit code (see the module doc)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        parser.error(f"cannot create --out {args.out!r}: {e.strerror or e}")
    command = shlex.join([sys.executable, *sys.argv] if argv is None else ["run_all", *argv])
    log = lambda line: print(line, flush=True)
    try:
        report = run(
            out,
            quick=args.quick,
            sections=args.only,
            peer=not args.no_peer,
            log=log,
            command=command,
        )
    except KeyboardInterrupt:
        print("run_all: interrupted", file=sys.stderr)
        return 130
    print((out / "bench.md").read_text(), end="", flush=True)
    if report["failed"]:
        print(f"run_all: failed sections: {', '.join(report['failed'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
