#!/usr/bin/env python
"""Where a planning call's time goes, op by op: a profiler trace of the compiled call.

Runs one ``bench_planning.py`` workload under ``jax.profiler.trace``, sums the time of every
XLA:CPU operation (thunk) over the traced calls, and attributes each one, from the op's
``op_name`` metadata in the compiled HLO, to a part of the call:

==================  ==========================================================================
part                operations
==================  ==========================================================================
onednn_layers       the oneDNN dense layers (``ffi_call``)
xla_dots            XLA's dots (the float32 layers, or every layer with ``dense_library="xla"``)
random_numbers      Threefry draws: the imagined step's noise, TS1's bits, ``fold_in`` and
                    ``split``, the planner's samples (XLA:CPU runs Threefry as a rolled loop)
model_other         the rest of the ensemble's forward pass (activations when not fused,
                    normalisation, the log-variance bounds)
ts1_shuffle         TS1's per-step permutation of each candidate's particles
rollout_other       the rest of the imagined step (grouping, the Gaussian sample, the state
                    update, rewards, termination)
planner             the planner's sampling and update, and the risk score
loops               the ``while`` loops' own thunks (see below)
rest                everything else
==================  ==========================================================================

An operation is attributed by its ``op_name`` (random numbers, dots, custom calls) and by the
innermost function of the project in its stack frame. The times are the CPU thunks' own wall
times. A ``while`` loop's thunk also spans the wait for asynchronous work of its body (the
oneDNN calls), so ``loops`` is left out of the shares, which are of the sum of the other parts.

The shares rank operations; they are not what removing one would save. Thunks run on both
cores and their times do not add up to the call's: on a 2-core AMD EPYC (family 26 model 2)
the float32 SiLU fusions' thunk time equalled the dots', yet replacing SiLU by ReLU changed
the whole call's time by 0.98-1.06x (interleaved A/B in one process). Measure a candidate fix
by timing the call with and without it.

Run: ``python benchmarks/trace_planning_call.py [--only pendulum_cem] [--dtypes bfloat16]
[--calls 3] [--out DIR]``; writes ``DIR/trace_planning_call.json`` and prints the parts and
the slowest operations.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import pathlib
import re
import statistics
import sys
import tempfile

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_planning as bp
from common import machine, write_json

PARTS = (
    "onednn_layers", "xla_dots", "random_numbers", "model_other", "ts1_shuffle",
    "rollout_other", "planner", "loops", "rest",
)  # fmt: skip
_RANDOM = ("threefry", "_normal", "_uniform", "_random_bits", "_truncated_normal", "random_")
_OP = re.compile(r'^\s*(?:ROOT )?%([\w.\-]+) = .*?op_name="([^"]*)"(?:.*?stack_frame_id=(\d+))?')
_MODEL_FILES = ("ensemble.py", "normalizer.py", "onednn.py")
_SHUFFLE = ("_random_permutations", "_shuffle_slots")


def _table(hlo_text: str, title: str) -> dict[int, str]:
    m = re.search(rf"^{title}\n(.*?)(?:\n\n|\Z)", hlo_text, re.S | re.M)
    rows = m.group(1).splitlines() if m else []
    return {int(r.split(" ", 1)[0]): r.split(" ", 1)[1] for r in rows if r[:1].isdigit()}


def _ids(row: str) -> dict[str, int]:
    """``{"file_name_id": 3, ...}`` of one row of those tables."""
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", row)}


def op_sources(hlo_text: str) -> dict[str, tuple[str, str]]:
    """``{instruction: (op_name, "file.py:function")}`` of a compiled module's text; the
    function is the innermost frame of the instruction's stack (empty when unknown)."""
    files = {k: v.strip('"').rsplit("/", 1)[-1] for k, v in _table(hlo_text, "FileNames").items()}
    funcs = {k: v.strip('"') for k, v in _table(hlo_text, "FunctionNames").items()}
    where = {}
    for k, v in _table(hlo_text, "FileLocations").items():
        ids = _ids(v)
        where[k] = f"{files.get(ids['file_name_id'])}:{funcs.get(ids['function_name_id'])}"
    frames = {
        k: where.get(_ids(v)["file_location_id"], "")
        for k, v in _table(hlo_text, "StackFrames").items()
    }
    out = {}
    for line in hlo_text.splitlines():
        m = _OP.match(line)
        if m:
            out[m.group(1)] = (m.group(2), frames.get(int(m.group(3) or 0), ""))
    return out


def part_of(name: str, op_name: str, source: str) -> str:
    """The part of :data:`PARTS` an operation belongs to (see the module docstring)."""
    last = op_name.rsplit("/", 1)[-1]
    if name.startswith("ffi_call") or last == "ffi_call":
        return "onednn_layers"
    if any(r in op_name for r in _RANDOM):
        return "random_numbers"
    if name.startswith("dot") or last == "dot_general":
        return "xla_dots"
    if name.startswith("while"):
        return "loops"
    file, _, func = source.partition(":")
    if file in _MODEL_FILES:
        return "model_other"
    if any(f in func for f in _SHUFFLE):
        return "ts1_shuffle"
    if file == "rollouts.py":
        return "planner" if func == "risk_score" else "rollout_other"
    if source.startswith(("cem.py", "icem.py", "mppi.py", "base.py", "random_shooting.py")):
        return "planner"
    return "rest"


def trace_ops(runner: bp.Runner, calls: int) -> dict[str, tuple[float, int]]:
    """``{op: (total seconds, count)}`` over ``calls`` traced planning calls."""
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            runner.run(calls, record=False)
        (path,) = pathlib.Path(tmp).rglob("*.trace.json.gz")
        events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    ops: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])
    for e in events:
        name = e.get("name", "")
        if e.get("ph") != "X" or name.startswith(("$", "ThunkExecutor")):
            continue
        ops[name][0] += e["dur"] * 1e-6
        ops[name][1] += 1
    return {k: (v[0], v[1]) for k, v in ops.items()}


def profile(name: str, dtype: str, calls: int, top: int) -> dict:
    """One workload and precision: the parts and the ``top`` slowest operations per call."""
    runner = bp.Runner(name, dtype, "ts1")
    runner.run(3)  # timed, untraced: the call's wall time for reference
    sources = op_sources(runner.compiled.as_text())
    ops = trace_ops(runner, calls)
    parts = collections.Counter()
    rows = []
    for op, (seconds, count) in ops.items():
        op_name, source = sources.get(op, ("", ""))
        part = part_of(op, op_name, source)
        parts[part] += seconds / calls
        rows.append({"op": op, "part": part, "ms_per_call": 1e3 * seconds / calls,
                     "runs_per_call": count / calls, "source": source,
                     "op_name": op_name})  # fmt: skip
    rows.sort(key=lambda r: -r["ms_per_call"])
    total = sum(v for p, v in parts.items() if p != "loops")
    return {
        "workload": name,
        "matmul_dtype": dtype,
        "untraced_call_s": statistics.median(runner.times),
        "parts_ms_per_call": {p: 1e3 * parts[p] for p in PARTS},
        "parts_share_without_loops": {p: parts[p] / total for p in PARTS if p != "loops"},
        "top_ops": rows[:top],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["pendulum_cem"], choices=sorted(bp.WORKLOADS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"],
                        choices=["float32", "bfloat16"])  # fmt: skip
    parser.add_argument("--calls", type=int, default=3, help="traced calls per workload")
    parser.add_argument("--top", type=int, default=15, help="slowest operations listed")
    parser.add_argument("--out", default="runs/bench")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.top < 1:
        parser.error("--calls and --top must be >= 1")
    report = {"benchmark": "trace_planning_call", "machine": machine(), "runs": []}
    for name in args.only:
        for dtype in args.dtypes:
            r = profile(name, dtype, args.calls, args.top)
            report["runs"].append(r)
            print(f"{name} [{dtype}]: {r['untraced_call_s']:.4f} s per call untraced; "
                  "thunk ms per call (share without loops):")  # fmt: skip
            for p in PARTS:
                share = r["parts_share_without_loops"].get(p)
                print(f"  {p:15s} {r['parts_ms_per_call'][p]:8.1f} ms"
                      + (f"  {100 * share:5.1f} %" if share is not None else ""))  # fmt: skip
            for row in r["top_ops"]:
                print(f"    {row['ms_per_call']:7.2f} ms  x{row['runs_per_call']:<5g} "
                      f"{row['op']:26s} {row['part']:15s} {row['source']}")  # fmt: skip
    out = pathlib.Path(args.out) / "trace_planning_call.json"
    write_json(out, report)
    return report


if __name__ == "__main__":
    main()
