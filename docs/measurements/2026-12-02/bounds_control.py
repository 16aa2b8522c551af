"""Is a planner's first-call shortfall on an optimum at the action bounds caused by the bounds?

``benchmarks/bench_bounds.py``'s targets on the bounds lie a half range from the planner's
start (the bounds' midpoint), its inside targets at most a quarter range. This control puts
the same on-bound targets inside a box twice as wide (same centre) and keeps the same
absolute initial spread, so they are as far from the start but no longer on a bound. One
planning call from ``init()``; the first action's largest error (max over A), median over the
5 keys of bench_bounds (H 6, A 3).

Run: python docs/measurements/2026-12-02/bounds_control.py
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "benchmarks"))
import bench_bounds as bb

from jaxmbrl.planners.cem import CEMConfig, cem
from jaxmbrl.planners.icem import ICEMConfig, icem

KEYS = jax.random.split(jax.random.key(0), 5)
ROWS = [  # name, config class, builder, options, initial std as a fraction of the box's range
    ("cem, mbrl-lib spread and step", CEMConfig, cem, dict(alpha=0.1, keep_std=False), 0.25),
    ("cem, defaults", CEMConfig, cem, {}, 0.5),
    ("icem, defaults", ICEMConfig, icem, {}, 0.25),
]


def main():
    print(__doc__.split("\n\n")[0])
    print(
        "| planner | box | inside (box x1) | on the bounds (box x1) | same targets inside (box x2) |"
    )
    print("|---|---|---|---|---|")
    for name, cls, build, options, fraction in ROWS:
        for box, (low, high) in bb.BOXES.items():
            low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
            index = list(bb.BOXES).index(box)
            drawn = [bb.make_target(k, low, high, index) for k in bb.KINDS]
            targets = np.stack([t for t, _ in drawn])
            masks = np.stack([m for _, m in drawn])
            medians = {}
            for scale in (1, 2):
                centre, half = (low + high) / 2, (high - low) / 2
                config = cls(
                    horizon=bb.HORIZON,
                    action_low=tuple(centre - scale * half),
                    action_high=tuple(centre + scale * half),
                    init_std_fraction=fraction / scale,
                    **options,
                )
                firsts, plans = bb.make_runner(build(config))(jnp.asarray(targets), KEYS)
                errors = bb.errors(np.asarray(firsts), np.asarray(plans), targets, masks)
                for kind in ("inside", "bounds"):
                    medians[scale, kind] = np.median(errors[kind]["first"][:, 0])
            print(
                f"| {name} | {box} | {medians[1, 'inside']:.3f} | {medians[1, 'bounds']:.3f} | "
                f"{medians[2, 'bounds']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
