"""Scratch grid of CEM/iCEM first-call errors on bench_bounds targets (kept as run).

Each argument is KIND[,f=FRACTION][,OPTION=VALUE...], KIND cem or icem, f the initial std as
a fraction of the range (before init_std_fraction existed, set by a subclass here). Prints
the first action's error (median over 5 keys) after calls 1/2/3 for the inside, bounds and
mixed targets of both boxes. The iCEM grid of 2026-12-02 (icem_grid_console.txt) ran as
python docs/measurements/2026-12-02/bounds/explore.py icem,f=F,alpha=A,return_mean_elites=R,colored_noise_exponent=B ...
for F in 0.25 0.5, A in 0.1 0.0, R in False True, B in 0.0 1.0 2.0.
"""

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[4] / "benchmarks"))
import bench_bounds as bb

from jaxmbrl.planners.cem import CEMConfig, cem
from jaxmbrl.planners.icem import ICEMConfig, icem


def variant(base_cls, factor):
    @dataclasses.dataclass(frozen=True)
    class C(base_cls):
        def initial_std(self):
            low, high = self.bounds()
            return jnp.broadcast_to((high - low) * factor, (self.horizon, self.action_dim))

    return C


keys = jax.random.split(jax.random.key(0), 5)


def run(name, make_cfg, build):
    out = []
    for box, (low, high) in bb.BOXES.items():
        cfg = make_cfg(low, high)
        planner = build(cfg)
        bi = list(bb.BOXES).index(box)
        drawn = [bb.make_target(k, low, high, bi) for k in bb.KINDS]
        targets = np.stack([t for t, _ in drawn])
        masks = np.stack([m for _, m in drawn])
        firsts, plans = jax.block_until_ready(bb.make_runner(planner)(jnp.asarray(targets), keys))
        errs = bb.errors(np.asarray(firsts), np.asarray(plans), targets, masks)
        s = " ".join(
            f"{k[:3]} " + "/".join(f"{np.median(errs[k]['first'][:, c]):.2f}" for c in range(3))
            for k in bb.KINDS
        )
        out.append(f"{box}: {s}")
    print(f"{name:40s}", " | ".join(out), flush=True)


H = bb.HORIZON
for spec in sys.argv[1:]:
    kind, *opts = spec.split(",")
    kw = dict(o.split("=") for o in opts)
    factor = float(kw.pop("f", 0.25))
    kw = {
        k: (
            (v == "True")
            if v in ("True", "False")
            else float(v)
            if "." in v
            else (v if v.isalpha() else int(v))
        )
        for k, v in kw.items()
    }
    if kind == "cem":
        C = variant(CEMConfig, factor)
        run(
            spec,
            lambda lo, hi: C(horizon=H, action_low=tuple(lo), action_high=tuple(hi), **kw),
            cem,
        )
    else:
        C = variant(ICEMConfig, factor)
        run(
            spec,
            lambda lo, hi: C(horizon=H, action_low=tuple(lo), action_high=tuple(hi), **kw),
            icem,
        )
