#!/usr/bin/env python
"""How close each continuous planner gets to an optimum on the action bounds (issue 13, item 1).

The objective is a quadratic over action sequences ``[N, H, A]`` with ``H = 6``, ``A = 3``
(18 dimensions): ``returns = -sum((actions - target)**2)`` per sequence, whose optimum is the
``target [H, A]``. Targets come in three kinds, each drawn once per box from a fixed seed:

* ``inside``: every entry ``centre + u * half_range`` with ``u ~ U[-0.5, 0.5]``;
* ``bounds``: every entry exactly on its lower or upper bound (chosen at random);
* ``mixed``: each entry on a bound with probability 1/2, otherwise drawn as ``inside``.

Two boxes: the non-symmetric ``low = (-2, -1, -3)``, ``high = (2, 0.5, 1)`` and the symmetric
``[-2, 2]^3``. For every planner below, ``K`` keys (5 by default) each start from
``planner.init()`` and make three consecutive planning calls on the same objective, each
warm-started from the previous call's plan state *without* ``shift`` (the same decision
again, to see whether more iterations converge). After each call we record, per key, the
first action's largest absolute error to ``target[0]`` (max over ``A``) and the plan's
(``info.solution``) largest error to ``target`` (max over ``H`` and ``A``); the table shows the
median over keys. For the ``mixed`` targets the plan error is also split into the entries on
a bound and those inside.

Planners (``N x I`` = candidates per iteration x iterations):

* the registry defaults of ``random``, ``cem``, ``icem`` and ``mppi`` at ``H = 6``, and CEM
  with the options of the ``mbrl-lib`` PETS preset;
* local variants (defined here, not in the library) at the compute of the default they
  modify: ``cem+clip`` samples from the unconstrained Gaussian ``N(mean, var)`` (no variance
  cap, untruncated) and clips the samples to the bounds, as the iCEM authors do, and takes
  the elite statistics from the clipped samples (the library's default CEM, and its iCEM and
  MPPI, take them from the unclipped ones, so that the mean can reach a bound); ``mppi+greedy``
  returns the best sequence scored during the call instead of the weighted mean;
  ``mppi+decayD`` multiplies the noise's standard deviation by ``D`` after every iteration;
  ``mppi+decayD+greedy`` does both.

Run: ``python benchmarks/bench_bounds.py [--quick] [--out FILE] [--keys K] [--boxes ...]
[--only NAME ...] [--mppi-decay D]``; writes ``FILE`` (default
``runs/bench_bounds/bounds.json``) with the machine record, and prints the tables.
``--quick``: 2 keys and the non-symmetric box only.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import machine, stats, write_json

from jaxmbrl.agents.pets import PETSConfig
from jaxmbrl.planners.base import PlanInfo, Planner, clip_broadcast, evaluate
from jaxmbrl.planners.cem import CEMConfig, CEMState, cem, cem_update, update_best
from jaxmbrl.planners.mppi import MPPIConfig, MPPIState, low_pass, mppi, mppi_update
from jaxmbrl.planners.registry import PlannerSpec, build
from jaxmbrl.types import ActionSpace, Array, Objective, PRNGKey

HORIZON = 6
NUM_CALLS = 3
KINDS = ("inside", "bounds", "mixed")
BOXES = {
    "asym": ((-2.0, -1.0, -3.0), (2.0, 0.5, 1.0)),
    "sym": ((-2.0, -2.0, -2.0), (2.0, 2.0, 2.0)),
}
TARGET_SEED = 0


# ----------------------------------------------------------------------------- targets


def make_target(kind: str, low, high, box_index: int) -> tuple[np.ndarray, np.ndarray]:
    """``(target [H, A] float32, on_bound [H, A] bool)`` for a target ``kind`` in a box.

    The random draws are the same for every kind (seeded by ``TARGET_SEED`` and the box), so
    ``mixed`` shares its inside entries with ``inside`` and its bound entries with ``bounds``.
    """
    rng = np.random.default_rng([TARGET_SEED, box_index])
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    shape = (HORIZON, low.shape[0])
    inside = (low + high) / 2 + rng.uniform(-0.5, 0.5, shape) * (high - low) / 2
    edge = np.where(rng.random(shape) < 0.5, low, high)
    mixed = rng.random(shape) < 0.5
    on_bound = {"inside": np.zeros(shape, bool), "bounds": np.ones(shape, bool), "mixed": mixed}
    mask = on_bound[kind]
    if kind == "mixed" and (mask.all() or not mask.any()):
        raise ValueError("the mixed target needs entries both on and inside the bounds")
    return np.where(mask, edge, inside).astype(np.float32), mask


def quadratic(target: Array) -> Objective:
    """The objective ``-sum((actions - target)**2)`` over ``[N, H, A]``, one score per row."""

    def objective(key: PRNGKey, actions: Array) -> Array:
        del key
        return -jnp.sum((actions - jnp.broadcast_to(target, actions.shape)) ** 2, axis=(1, 2))

    return objective


# ----------------------------------------------------------------------------- variants


class _CEMCarry(NamedTuple):
    mean: Array  # [H, A] float32 sampling mean
    var: Array  # [H, A] float32 sampling variance (uncapped)
    best: Array  # [H, A] float32 best sequence scored so far
    best_return: Array  # [] float32 its return


def cem_clipped(config: CEMConfig) -> Planner:
    """CEM drawing ``clip(mean + sqrt(var) * z, low, high)`` with ``z ~ N(0, 1)``.

    mbrl-lib's CEM (``sampling="truncated"``) caps the variance at ``min(((mean - low) /
    2)**2, ((high - mean) / 2)**2)`` and truncates ``z`` to ``[-2, 2]``; this variant does
    neither (design 1 of the issue) and keeps everything else: elite update on the scored
    (clipped) samples, ``alpha``, the returned mean or best, ``init`` and ``shift``. The
    library's default (``sampling="clipped"``) samples the same way but takes the elite
    statistics from the unclipped samples.
    """
    base = cem(config)
    low, high = config.bounds()
    init_std = config.initial_std()
    shape = (config.num_samples, config.horizon, config.action_dim)

    def plan(state: CEMState, key: PRNGKey, objective: Objective):
        mean0 = clip_broadcast(state.mean, low, high)
        var0 = (state.std if config.keep_std else init_std) ** 2

        def iteration(carry: _CEMCarry, iter_key: PRNGKey):
            sample_key, eval_key = jax.random.split(iter_key)
            z = jax.random.normal(sample_key, shape, jnp.float32)
            samples = clip_broadcast(carry.mean[None] + jnp.sqrt(carry.var)[None] * z, low, high)
            returns = evaluate(objective, eval_key, samples)
            mean, var, idx, elite_returns = cem_update(
                carry.mean, carry.var, samples, returns, config.num_elites, config.alpha
            )
            best, best_return = update_best(
                carry.best, carry.best_return, samples[idx[0]], elite_returns[0]
            )
            return _CEMCarry(mean, var, best, best_return), jnp.mean(elite_returns)

        carry0 = _CEMCarry(mean0, var0, mean0, jnp.float32(-jnp.inf))
        keys = jax.random.split(key, config.num_iterations)
        final, elite_means = jax.lax.scan(iteration, carry0, keys)
        if config.return_mean_elites:
            solution, expected = clip_broadcast(final.mean, low, high), elite_means[-1]
        else:
            solution, expected = final.best, final.best_return
        info = PlanInfo(solution=solution, expected_return=expected)
        return solution[0], CEMState(mean=solution, std=jnp.sqrt(final.var)), info

    return Planner(init=base.init, plan=plan, shift=base.shift)


class _MPPICarry(NamedTuple):
    mean: Array  # [H, A] float32 the weighted mean
    best: Array  # [H, A] float32 best sequence scored so far
    best_return: Array  # [] float32 its return


def mppi_variant(config: MPPIConfig, decay: float = 1.0, greedy: bool = False) -> Planner:
    """MPPI with the noise's std ``sigma * decay**i`` at iteration ``i`` and, with ``greedy``,
    the best sequence scored during the call returned (and kept as the plan state) instead of
    the final weighted mean. ``decay = 1``, ``greedy = False`` is the library's MPPI."""
    base = mppi(config)
    low, high = config.bounds()
    shape = (config.num_samples, config.horizon, config.action_dim)
    sigmas = config.noise_sigma * decay ** jnp.arange(config.num_iterations, dtype=jnp.float32)

    def plan(state: MPPIState, key: PRNGKey, objective: Objective):
        def iteration(carry: _MPPICarry, inputs: tuple[PRNGKey, Array]):
            iter_key, sigma = inputs
            noise_key, eval_key = jax.random.split(iter_key)
            noise = jax.random.normal(noise_key, shape, jnp.float32)
            actions = clip_broadcast(
                carry.mean[None] + sigma * low_pass(noise, config.beta), low, high
            )
            returns = evaluate(objective, eval_key, actions)
            top = jnp.argmax(returns)
            best, best_return = update_best(
                carry.best, carry.best_return, actions[top], returns[top]
            )
            mean, expected = mppi_update(carry.mean, actions, returns, config.temperature)
            return _MPPICarry(mean, best, best_return), expected

        mean0 = clip_broadcast(state.mean, low, high)
        carry0 = _MPPICarry(mean0, mean0, jnp.float32(-jnp.inf))
        keys = jax.random.split(key, config.num_iterations)
        final, expected = jax.lax.scan(iteration, carry0, (keys, sigmas))
        if greedy:
            solution, expected_return = final.best, final.best_return
        else:
            solution, expected_return = clip_broadcast(final.mean, low, high), expected[-1]
        info = PlanInfo(solution=solution, expected_return=expected_return)
        return solution[0], MPPIState(mean=solution), info

    return Planner(init=base.init, plan=plan, shift=base.shift)


# ----------------------------------------------------------------------------- planners


class Entry(NamedTuple):
    """A planner to measure: its row name, the default it derives from, and a factory."""

    name: str
    spec: PlannerSpec
    make: Callable[[object], Planner] | None  # config -> variant; None: the registry's own


def entries(mppi_decay: float) -> list[Entry]:
    """Every planner and variant measured, registry defaults first."""
    preset = PETSConfig.preset("mbrl-lib").planner
    d = f"{mppi_decay:g}"
    return [
        Entry("random", PlannerSpec("random", horizon=HORIZON), None),
        Entry("cem", PlannerSpec("cem", horizon=HORIZON), None),
        Entry("cem (mbrl-lib)", PlannerSpec("cem", HORIZON, preset.options), None),
        Entry("icem", PlannerSpec("icem", horizon=HORIZON), None),
        Entry("mppi", PlannerSpec("mppi", horizon=HORIZON), None),
        Entry("cem+clip", PlannerSpec("cem", horizon=HORIZON), cem_clipped),
        Entry(
            "mppi+greedy",
            PlannerSpec("mppi", horizon=HORIZON),
            lambda c: mppi_variant(c, greedy=True),
        ),
        Entry(
            f"mppi+decay{d}",
            PlannerSpec("mppi", horizon=HORIZON),
            lambda c: mppi_variant(c, decay=mppi_decay),
        ),
        Entry(
            f"mppi+decay{d}+greedy",
            PlannerSpec("mppi", horizon=HORIZON),
            lambda c: mppi_variant(c, decay=mppi_decay, greedy=True),
        ),
    ]


def compute_of(config) -> str:
    """``N x I (candidates per call)`` of a planner config (iCEM: first -> last population)."""
    iterations = getattr(config, "num_iterations", 1)
    if hasattr(config, "candidates_per_call"):  # iCEM: decaying population, kept elites
        sizes = config.population_sizes()
        return f"{sizes[0]}->{sizes[-1]}x{iterations} ({config.candidates_per_call()}/call)"
    return f"{config.num_samples}x{iterations} ({config.num_samples * iterations}/call)"


def make_runner(planner: Planner):
    """A jitted ``run(targets [T, H, A], keys [K]) -> (firsts [T, K, C, A], plans [T, K, C, H,
    A])``: ``C`` consecutive calls from ``planner.init()``, warm-started without ``shift``."""

    def run_one(target: Array, key: PRNGKey):
        objective = quadratic(target)

        def call(state, call_key):
            action, state, info = planner.plan(state, call_key, objective)
            return state, (action, info.solution)

        _, (firsts, plans) = jax.lax.scan(call, planner.init(), jax.random.split(key, NUM_CALLS))
        return firsts, plans

    per_key = jax.vmap(run_one, in_axes=(None, 0))
    return jax.jit(jax.vmap(per_key, in_axes=(0, None)))


def errors(firsts, plans, targets, masks) -> dict:
    """Per target kind, ``[K, C]`` errors: first action, plan, and (mixed) plan on/inside."""
    out = {}
    for t, kind in enumerate(KINDS):
        diff = np.abs(plans[t] - targets[t][None, None])  # [K, C, H, A]
        rec = {
            "first": np.abs(firsts[t] - targets[t][0]).max(axis=-1),  # [K, C]
            "plan": diff.max(axis=(-2, -1)),
        }
        if kind == "mixed":
            rec["plan_on_bound"] = np.where(masks[t], diff, 0).max(axis=(-2, -1))
            rec["plan_inside"] = np.where(masks[t], 0, diff).max(axis=(-2, -1))
        out[kind] = rec
    return out


def measure(entry: Entry, box: str, keys: Array) -> list[dict]:
    """The rows (one per target kind) of one planner in one box."""
    low, high = BOXES[box]
    planner, config = build(entry.spec, ActionSpace.box(low, high))
    if entry.make is not None:
        planner = entry.make(config)
    box_index = list(BOXES).index(box)
    drawn = [make_target(k, low, high, box_index) for k in KINDS]
    targets = np.stack([t for t, _ in drawn])
    masks = np.stack([m for _, m in drawn])
    t0 = time.perf_counter()
    firsts, plans = jax.block_until_ready(make_runner(planner)(jnp.asarray(targets), keys))
    seconds = time.perf_counter() - t0
    errs = errors(np.asarray(firsts), np.asarray(plans), targets, masks)
    rows = []
    for kind in KINDS:
        rec = errs[kind]
        row = {
            "planner": entry.name,
            "spec": entry.spec.as_dict(),
            "variant": entry.make is not None,
            "compute": compute_of(config),
            "box": box,
            "low": list(low),
            "high": list(high),
            "kind": kind,
            "target": targets[KINDS.index(kind)].tolist(),
            "seconds_compile_and_run": seconds,
        }
        for name, values in rec.items():  # values [K, C]
            row[name] = {
                f"call{c + 1}": {**stats(values[:, c]), "per_key": values[:, c].tolist()}
                for c in range(NUM_CALLS)
            }
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- tables


def _med(row: dict, name: str, call: int) -> str:
    return f"{row[name][f'call{call}']['median']:.3f}"


def main_table(rows: list[dict]) -> str:
    head = [
        "planner",
        "N x I",
        "box",
        "target",
        *(f"first@{c}" + ("*" if c > 1 else "") for c in (1, 2, 3)),
        *(f"plan@{c}" + ("*" if c > 1 else "") for c in (1, 2, 3)),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["planner"], r["compute"], r["box"], r["kind"]]
        cells += [_med(r, "first", c) for c in (1, 2, 3)]
        cells += [_med(r, "plan", c) for c in (1, 2, 3)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("\n@c: after c calls; * calls 2 and 3 warm-start from the previous call's state")
    lines.append("WITHOUT shift (the same decision planned again).")
    return "\n".join(lines)


def summary_table(rows: list[dict]) -> str:
    """First-action error after one call: inside, bounds, mixed and bounds / inside."""
    head = [
        "planner",
        "N x I",
        "box",
        "inside",
        "bounds",
        "mixed",
        "bounds/inside",
        "mixed plan: on-bound / inside entries",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by = {(r["planner"], r["box"], r["kind"]): r for r in rows}
    for planner, box in dict.fromkeys((r["planner"], r["box"]) for r in rows):
        get = {k: by[(planner, box, k)] for k in KINDS}
        med = {k: get[k]["first"]["call1"]["median"] for k in KINDS}
        ratio = med["bounds"] / med["inside"] if med["inside"] > 0 else float("inf")
        mixed = f"{_med(get['mixed'], 'plan_on_bound', 1)} / {_med(get['mixed'], 'plan_inside', 1)}"
        cells = [
            planner,
            get["inside"]["compute"],
            box,
            *(f"{med[k]:.3f}" for k in KINDS),
            f"{ratio:.1f}",
            mixed,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench_bounds/bounds.json", help="JSON file")
    parser.add_argument("--quick", action="store_true", help="2 keys, the non-symmetric box")
    parser.add_argument("--keys", type=int, default=None, help="keys per cell (default 5)")
    parser.add_argument("--boxes", nargs="+", default=None, choices=list(BOXES))
    parser.add_argument("--only", nargs="+", default=None, help="planner rows to run")
    parser.add_argument(
        "--mppi-decay",
        type=float,
        default=0.5,
        help="noise std factor per iteration of the mppi+decay variants",
    )
    args = parser.parse_args(argv)
    num_keys = args.keys or (2 if args.quick else 5)
    boxes = args.boxes or (["asym"] if args.quick else list(BOXES))
    todo = entries(args.mppi_decay)
    if args.only:
        unknown = sorted(set(args.only) - {e.name for e in todo})
        if unknown:
            parser.error(f"unknown planners {unknown}; choose from {[e.name for e in todo]}")
        todo = [e for e in todo if e.name in args.only]
    keys = jax.random.split(jax.random.key(0), num_keys)

    t0 = time.perf_counter()
    rows = []
    for box in boxes:
        for entry in todo:
            new = measure(entry, box, keys)
            med = ", ".join(f"{r['kind']} {r['first']['call1']['median']:.3f}" for r in new)
            print(
                f"{entry.name} [{box}]: first-action error {med} "
                f"({new[0]['seconds_compile_and_run']:.1f} s)",
                flush=True,
            )
            rows.extend(new)
    wall = time.perf_counter() - t0

    note = (
        f"median over {num_keys} keys of the largest absolute error (max over A for the "
        f"first action, over H and A for the plan) after 1, 2 and 3 consecutive planning "
        f"calls from init(), each warm-started from the previous call's state WITHOUT shift; "
        f"H={HORIZON}, A=3, one fixed target per kind and box (seed {TARGET_SEED})"
    )
    summary, table = summary_table(rows), main_table(rows)
    print(f"\nFirst-action error after one call ({note}):\n\n{summary}\n")
    print(f"All errors:\n\n{table}\n\nwall {wall:.1f} s", flush=True)
    report = {
        "benchmark": "bounds",
        "machine": machine(),
        "command": [sys.executable, *sys.argv],
        "quick": args.quick,
        "config": {
            "horizon": HORIZON,
            "num_calls": NUM_CALLS,
            "num_keys": num_keys,
            "boxes": {b: BOXES[b] for b in boxes},
            "target_seed": TARGET_SEED,
            "mppi_decay": args.mppi_decay,
            "shift_between_calls": False,
            "note": note,
        },
        "rows": rows,
        "wall_s": wall,
        "summary_md": summary,
        "table_md": table,
    }
    write_json(pathlib.Path(args.out), report)
    return report


if __name__ == "__main__":
    main()
