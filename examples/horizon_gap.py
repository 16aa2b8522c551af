#!/usr/bin/env python
"""Compounding error and horizon: imagined against real return of MPC plans, H = 5..50.

The lesson's "planning too far ahead with a weak model: great simulated return, poor real
return", measured on Pendulum-v1 (gymnax). Two models are trained on the same random-action
transitions (as in ``compounding_error.py``, same epochs, each keeps its best epoch):

* ``single``: one deterministic MLP (MSE), and
* ``ensemble``: a probabilistic ensemble, PETS-style: Gaussian heads, 5 members, 3 elites,
  TS1 particle propagation (each particle goes through a random elite every step and is
  sampled from its Gaussian), the return averaged over the particles;

and the true dynamics (``oracle``) is the reference. For every horizon ``H`` each is used for
MPC (CEM, warm-started) for ``S`` episodes from the same start states, and every real step
records the same three ``H``-step returns from the real state ``s_t`` as
``model_bias.py`` does (:func:`jaxmbrl.diagnostics.plan_trace`: the library's episode, then
each chosen plan, ``EpisodeRecord.solutions``, scored again afterwards):

* ``imagined``: the model's return of the chosen plan (``PlanInfo.solution`` re-scored by
  the objective the planner maximised; ``PlanInfo.expected_return`` is kept as
  ``expected``);
* ``open_loop``: the true environment's return of the same plan executed blind from
  ``s_t`` -- the main measure: ``gap = imagined - open_loop`` is what the model promised
  beyond what its plan delivers;
* ``closed_loop``: the real rewards MPC collected in the next ``H`` steps (replanning).

Means over ``t = 0..T-H`` and episodes; ``gap / H`` (per imagined step) compares horizons.
The oracle's gap is 0 by construction (a check that like is compared with like), and its
real return separates what the planner can do at each ``H`` from what the model costs.

  .venv/bin/python examples/horizon_gap.py --quick --out out/horizon_gap

writes ``horizon_gap.json`` (config, numbers, timings) and ``horizon_gap.png`` to ``--out``
and prints a table. ``--quick`` runs horizons 5 and 20 with small models: a smoke run.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import models, mpc, reporting
from jaxmbrl.diagnostics import plan_trace, summarize
from jaxmbrl.envs import load, make, random_episodes
from jaxmbrl.planners.registry import PlannerSpec, build
from jaxmbrl.rollouts import RolloutConfig, make_particle_objective

MODELS = ("single", "ensemble", "oracle")


# --- the experiment ----------------------------------------------------------------------------


def train_models(cfg, key):
    """Random-action data; the single deterministic model and the ensemble, same epochs."""
    env, params = make("Pendulum-v1")
    k_data, k_held, k_single, k_ens = jax.random.split(key, 4)
    d = jax.jit(lambda k: random_episodes(env, params, k, cfg.train_episodes, 200))(k_data)
    data = tuple(x.reshape(-1, x.shape[-1]) for x in (d.obs, d.action, d.next_obs))
    train_cfg = models.TrainConfig(learning_rate=1e-3, max_epochs=cfg.epochs, patience=cfg.epochs)
    single_cfg = models.EnsembleConfig(
        obs_dim=3,
        action_dim=1,
        num_members=1,
        num_elites=1,
        hidden_sizes=cfg.hidden,
        deterministic=True,
    )
    ens_cfg = models.EnsembleConfig(
        obs_dim=3, action_dim=1, num_members=5, num_elites=3, hidden_sizes=cfg.hidden
    )
    single, _ = models.train(single_cfg, train_cfg, k_single, None, *data)
    ens, _ = models.train(ens_cfg, train_cfg, k_ens, None, *data)
    d = jax.jit(lambda k: random_episodes(env, params, k, 5, 200))(k_held)
    held = tuple(x.reshape(-1, x.shape[-1]) for x in (d.obs, d.action, d.next_obs))
    errors = {
        "single": float(models.evaluate(single_cfg, single, *held)[0]),
        "ensemble": float(
            jnp.mean(models.evaluate(ens_cfg, ens, *held)[ens.elite_idx])  # elites
        ),
    }
    configs = {"single": single_cfg, "ensemble": ens_cfg, "train": train_cfg}
    return {"single": single, "ensemble": ens}, configs, errors, int(data[0].shape[0])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="horizons 5, 20; small models")
    parser.add_argument("--out", default="out/horizon_gap", help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizons", default=None, help="comma-separated, e.g. 5,10,20")
    parser.add_argument("--episodes", type=int, default=None, help="MPC episodes per point")
    parser.add_argument("--steps", type=int, default=None, help="real steps per episode")
    parser.add_argument("--particles", type=int, default=None, help="ensemble TS1 particles")
    parser.add_argument(
        "--train-episodes", type=int, default=None, help="random 200-step training episodes"
    )
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    quick = args.quick
    default_h = "5,20" if quick else "5,10,20,30,40,50"
    cfg = argparse.Namespace(
        horizons=[int(h) for h in (args.horizons or default_h).split(",")],
        episodes=args.episodes or (2 if quick else 3),
        steps=args.steps or (50 if quick else 150),
        particles=args.particles or (3 if quick else 6),
        num_samples=40 if quick else 100,
        num_iterations=2 if quick else 3,
        train_episodes=args.train_episodes or (10 if quick else 50),
        hidden=(64, 64) if quick else (128, 128, 128),
        epochs=20 if quick else 60,
    )
    if max(cfg.horizons) > cfg.steps:
        parser.error(f"every horizon must be <= --steps ({cfg.steps})")
    spec, env = load("Pendulum-v1")
    k_train, k_eval = jax.random.split(jax.random.key(args.seed))
    timings: dict = {}

    t = time.perf_counter()
    trained, configs, held_err, num_rows = train_models(cfg, k_train)
    jax.block_until_ready(trained)
    timings["data_and_training_s"] = time.perf_counter() - t

    rollouts = {
        "single": RolloutConfig(num_particles=1, propagation="expectation"),
        "ensemble": RolloutConfig(num_particles=cfg.particles, propagation="ts1"),
    }

    def learned(name):
        """``model -> ObjectiveFactory``: particle rollouts through the model ``name``."""
        mc = configs[name]

        def objectives(model) -> mpc.ObjectiveFactory:
            grouped = functools.partial(models.predict_grouped, mc, model)

            def make_objective(env_state, obs):
                del env_state  # a learned model sees only the observation
                return make_particle_objective(
                    rollouts[name], grouped, obs, num_members=mc.num_elites, reward_fn=env.reward_fn
                )

            return make_objective

        return objectives

    objectives = {
        "single": learned("single"),
        "ensemble": learned("ensemble"),
        "oracle": lambda model: mpc.oracle(env),
    }
    keys = jax.random.split(k_eval, cfg.episodes)  # the same start states for every point
    rows = []
    for h in cfg.horizons:
        options = {
            "num_samples": cfg.num_samples,
            "num_elites": max(1, cfg.num_samples // 10),
            "num_iterations": cfg.num_iterations,
        }
        planner, _ = build(PlannerSpec("cem", horizon=h, options=options), spec.action)
        for name in MODELS:

            def episode(model, key, name=name, planner=planner):
                make_objective = objectives[name](model)
                return plan_trace(env, planner, make_objective, key, num_steps=cfg.steps)

            run = jax.jit(jax.vmap(episode, in_axes=(None, 0)))
            t = time.perf_counter()
            trace = jax.block_until_ready(run(trained.get(name), keys))
            wall = time.perf_counter() - t
            row = summarize(trace, h)
            row.update(model=name, horizon=h, wall_s=wall)
            rows.append(row)
            print(
                f"H={h:3d} {name:<9} imagined {row['imagined']:9.2f}  open loop "
                f"{row['open_loop']:9.2f}  gap/H {row['gap_open_per_step']:7.3f}  real return "
                f"{row['real_return']:8.1f}  ({wall:.1f}s)",
                flush=True,
            )
    timings["total_s"] = time.perf_counter() - t_start

    config = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(cfg).items()}
    config.update(
        quick=quick,
        seed=args.seed,
        planner="cem",
        train_transitions=num_rows,
        single_model=configs["single"].to_dict(),
        ensemble_model=configs["ensemble"].to_dict(),
        train=dataclasses.asdict(configs["train"]),
        ensemble_rollout=dataclasses.asdict(rollouts["ensemble"]),
    )
    result = {
        "measure": {
            "imagined": "model's H-step return of the chosen plan (PlanInfo.solution) from s_t",
            "expected": "PlanInfo.expected_return (CEM: mean return of the last elites)",
            "open_loop": "true env's H-step return of the same plan executed blind from s_t",
            "closed_loop": "real r_t + ... + r_{t+H-1} collected by MPC (replanning) from s_t",
            "gap_open": "imagined - open_loop; *_per_step: divided by H",
            "averaging": "mean over t = 0..T-H, then over episodes",
        },
        "config": config,
        "heldout_one_step_error": held_err,
        "rows": rows,
        "timings": timings,
    }
    reporting.write_json(out_dir / "horizon_gap.json", result)
    _plot(result, out_dir / "horizon_gap.png")
    _print(result)
    print(f"wrote {out_dir}/horizon_gap.{{json,png}} in {timings['total_s']:.1f}s")
    return result


def _series(result: dict, name: str, key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in result["rows"] if r["model"] == name]
    return [r["horizon"] for r in rows], [r[key] for r in rows]


def _print(result: dict) -> None:
    cols = (
        "imagined",
        "open_loop",
        "closed_loop",
        "gap_open",
        "gap_open_per_step",
        "gap_closed",
        "real_return",
    )
    print("\n   H  model    " + "".join(f"{c:>18}" for c in cols))
    for r in result["rows"]:
        print(f"{r['horizon']:>4}  {r['model']:<9}" + "".join(f"{r[c]:>18.3f}" for c in cols))


def _plot(result: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for name in MODELS:
        hs, imag = _series(result, name, "imagined")
        _, real = _series(result, name, "open_loop")
        (line,) = axes[0].plot(hs, np.asarray(imag) / hs, "o-", label=f"{name}: imagined")
        axes[0].plot(hs, np.asarray(real) / hs, "s--", color=line.get_color(), label="  real")
        _, gap = _series(result, name, "gap_open_per_step")
        _, sd = _series(result, name, "gap_open_std")
        axes[1].errorbar(hs, gap, yerr=np.asarray(sd) / hs, fmt="o-", capsize=3, label=name)
        _, ret = _series(result, name, "real_return")
        axes[2].plot(hs, ret, "o-", label=name)
    axes[0].set_title("H-step return of the chosen plan / H\n(real: the same plan, open loop)")
    axes[1].set_title("gap (imagined - real) / H, +- sd over episodes")
    axes[2].set_title(f"real MPC episode return ({result['config']['steps']} steps)")
    axes[1].axhline(0, color="k", lw=0.5)
    for ax in axes:
        ax.set_xlabel("planning horizon H")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
