"""Tables of compare.sh's results: python summarize.py OUT_DIR > summary.md"""

import json
import pathlib
import statistics
import sys

out = pathlib.Path(sys.argv[1])


def load(pattern):
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob(pattern))}


planning = load("planning_*/planning.json")
cpu = next(iter(planning.values()))["machine"]
print(f"CPU: {cpu.get('cpu')}; per run, from its machine record:")
for name, d in planning.items():
    print(
        f"- {name}: dot_library {d['machine'].get('dot_library')}, matmul peak "
        f"{d['matmul_peak'].get('xla_gflops', 0):.0f} GFLOP/s (XLA, 4096^2 float32)"
    )
print()
# (workload, layer) -> dot library -> [median s/call per run]; layer: XLA's dot or oneDNN
rows = {}
for name, d in planning.items():
    lib = name.removeprefix("planning_").rsplit("_", 1)[0]
    for r in d["rows"]:
        for key, v in r["jaxmbrl"].items():
            layer = key.split("+")[1]
            rows.setdefault((r["workload"], layer), {}).setdefault(lib, []).append(
                v["seconds"]["median"]
            )
print("Planning in float32, seconds per call (median of each run's repeats; one per run).")
print("`layers`: the dense layers through XLA's dot (`xla`) or oneDNN (`onednn`); the")
print("columns are XLA:CPU's dot library for the rest of the program (and for the layers,")
print("when they are XLA's):\n")
print("| workload | layers | ynnpack | xla | ynnpack / xla |")
print("|---|---|---|---|---|")
for (w, layer), by in rows.items():
    cells = [", ".join(f"{s:.3f}" for s in by.get(lib, [])) for lib in ("ynnpack", "xla")]
    ratio = statistics.median(by["ynnpack"]) / statistics.median(by["xla"])
    print(f"| {w} | {layer} | " + " | ".join(cells) + f" | {ratio:.2f} |")
print("\noneDNN layers / XLA's dot layers, median over the four runs:\n")
for w in dict.fromkeys(w for w, _ in rows):
    dnn = statistics.median(s for runs in rows[(w, "onednn")].values() for s in runs)
    xla = statistics.median(s for runs in rows[(w, "xla")].values() for s in runs)
    print(f"- {w}: {dnn / xla:.2f}")
print("\nTraining (bench_training.py, samples/s):\n")
for name, d in load("training_*/bench_training.json").items():
    s = d["jaxmbrl"]["samples_per_s"]
    print(f"- {name}: {s['median']:,.0f} [{s['min']:,.0f}-{s['max']:,.0f}]")
