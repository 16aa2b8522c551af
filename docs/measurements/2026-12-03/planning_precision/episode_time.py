"""A preset's planned 200-step PETS Pendulum episode, float32 against bfloat16 planning matmuls.

Both programs are compiled first, then timed interleaved (float32, bfloat16, float32, ...) from
the same untrained state (the planning cost does not depend on the weights).

Run: ``python docs/measurements/2026-12-03/planning_precision/episode_time.py PRESET REPEATS OUT``
"""

import sys
import time

import jax
import numpy as np

from jaxmbrl.agents.pets import PETSConfig, make_pets
from jaxmbrl.reporting import machine_record, write_json

preset, reps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
report = {"preset": preset, "machine": machine_record(), "rows": {}}
fns = {}
for dtype in ("float32", "bfloat16"):
    pets = make_pets(PETSConfig.preset(preset, num_episodes=1, planning_matmul_dtype=dtype))
    state = pets.init(jax.random.key(0))
    episode = jax.jit(pets.planned_episode)
    t = time.perf_counter()
    jax.block_until_ready(episode(state))
    fns[dtype] = (episode, state)
    report["rows"][dtype] = {"first_call_s": time.perf_counter() - t, "episode_s": []}
for _ in range(reps):
    for dtype, (episode, state) in fns.items():
        t = time.perf_counter()
        jax.block_until_ready(episode(state))
        report["rows"][dtype]["episode_s"].append(time.perf_counter() - t)
for dtype, row in report["rows"].items():
    row["median_s"] = float(np.median(row["episode_s"]))
    print(f"{preset} [{dtype}]: median {row['median_s']:.3f} s over {reps}: {row['episode_s']}")
report["float32_over_bfloat16"] = (
    report["rows"]["float32"]["median_s"] / report["rows"]["bfloat16"]["median_s"]
)
print(f"float32 / bfloat16: {report['float32_over_bfloat16']:.2f}")
write_json(out, report)
