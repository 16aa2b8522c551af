"""Tables of compare.sh's results: python summarize.py OUT_DIR > summary.md"""

import json
import pathlib
import statistics
import sys

out = pathlib.Path(sys.argv[1])
LIBS = ("ynnpack", "xla", "ynnpack_dot")


def load(pattern):
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob(pattern))}


planning = load("planning_*/planning.json")
cpu = next(iter(planning.values()))["machine"]
print(f"CPU: {cpu.get('cpu')}; dot_library per run from machine_record:")
for name, d in planning.items():
    print(
        f"- {name}: {d['machine'].get('dot_library')}, matmul peak "
        f"{d['matmul_peak'].get('xla_gflops', 0):.0f} GFLOP/s (XLA, 4096^2 float32)"
    )
print()
rows = {}
for name, d in planning.items():
    lib = name.removeprefix("planning_").rsplit("_", 1)[0]
    for r in d["rows"]:
        for dtype, v in r["jaxmbrl"].items():
            rows.setdefault((r["workload"], dtype), {}).setdefault(lib, []).append(
                v["seconds"]["median"]
            )
        if r["mbrl_lib"] and "seconds" in r["mbrl_lib"]:
            rows.setdefault((r["workload"], "mbrl-lib"), {})["peer"] = [
                r["mbrl_lib"]["seconds"]["median"]
            ]
print("Planning, seconds per call (median of each run's repeats; one figure per run):\n")
print("| workload | dtype | ynnpack | xla | ynnpack_dot | ynnpack / xla |")
print("|---|---|---|---|---|---|")
for (w, dtype), by in rows.items():
    if dtype == "mbrl-lib":
        continue
    cells = [", ".join(f"{s:.3f}" for s in by.get(lib, [])) for lib in LIBS]
    ratio = statistics.median(by["ynnpack"]) / statistics.median(by["xla"])
    print(f"| {w} | {dtype} | " + " | ".join(cells) + f" | {ratio:.2f} |")
peer = {w: by["peer"][0] for (w, d), by in rows.items() if d == "mbrl-lib"}
if peer:
    print(
        "\nmbrl-lib in the first ynnpack run (s/call): "
        + ", ".join(f"{w} {s:.3f}" for w, s in peer.items())
    )
print("\nTraining (bench_training.py, samples/s):\n")
for name, d in load("training_*/bench_training.json").items():
    s = d["jaxmbrl"]["samples_per_s"]
    print(f"- {name}: {s['median']:,.0f} [{s['min']:,.0f}-{s['max']:,.0f}]")
print("\nWhole default PETS run, Pendulum-v1, 5 seeds x 10 episodes (tune_pets.py):\n")
print("| run | last-3 mean | worst seed | wall s | training s | planned episodes s |")
print("|---|---|---|---|---|---|")
for p in sorted(out.glob("pets_*/*.json")):
    s = json.loads(p.read_text())["summary"]
    print(
        f"| {p.parent.name} | {s['last3_mean']:.1f} | {s['last3_worst_seed']:.1f} | "
        f"{s['wall_s']:.1f} | {s['train_s']:.1f} | {s['episode_s']:.1f} |"
    )
