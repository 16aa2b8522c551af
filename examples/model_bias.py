#!/usr/bin/env python
"""Model bias, measured: the imagined return of the chosen plan against the real return.

The lesson's checkpoint question ("the learned model predicts x' = x + 0.05u instead of
0.1u: what happens to planning?") and its "great simulated return, poor real return", as
numbers. At every real step of an MPC episode (the library's, :func:`jaxmbrl.mpc.episode`:
one ``lax.scan``) the planner (CEM) picks a plan ``a_t..a_{t+H-1}`` from the real state
``s_t``; the episode's record keeps every chosen plan (``EpisodeRecord.solutions``), and
afterwards we score each one again from its ``s_t`` and record

* ``imagined``: the model's ``H``-step return of that plan from ``s_t`` (the plan re-scored
  by the objective the planner maximised; the planner's own ``PlanInfo.expected_return`` --
  for CEM the mean return of the last iteration's elites -- is recorded as ``expected``),
* ``open_loop``: the real ``H``-step return of the *same* plan executed blind from ``s_t``
  in the true environment (``Environment.oracle_objective``): what the promise is worth without
  replanning, and
* ``closed_loop``: the real rewards ``r_t + ... + r_{t+H-1}`` that MPC actually collected
  from ``s_t`` while replanning every step (defined for ``t <= T - H``).

All three are ``H``-step returns from the same real state, so they compare directly. The
gaps reported are ``imagined - open_loop`` (model bias on its own plan) and ``imagined -
closed_loop`` (the simulated-vs-real gap of MPC); ``closed_loop - open_loop`` is what
replanning recovers. Means are over the windows ``t = 0..T-H`` and over episodes.

Part A, the point mass (true ``x' = x + 0.1u``, reward ``-|x' - goal|``, start ``x = 0``):
plan with the true model, the checkpoint's biased ``0.05u`` model and an over-confident
``0.2u`` model; the models are the point-mass environment itself with another ``gain``
(``EnvParams`` is a pytree, so models x goals x seeds are one ``vmap``). Also recorded: the
*one-step* imagined episode return (the model's predicted reward of every action taken).

Part B, Pendulum-v1 (gymnax): a probabilistic ensemble (Gaussian heads, the known reward,
the library's PETS defaults: 5 members, 3 elites, ``expectation`` propagation) trained on

* ``little``: a few hundred random transitions (tiled to the row count of the others, so all
  three train for the same number of gradient steps on the same-shaped arrays),
* ``narrow``: many transitions, but only near hanging down (``|theta - pi| <= 0.5``,
  ``|theta_dot| <= 0.5`` at the start) with small torques (``|u| <= 0.5`` of 2),
* ``adequate``: as many random transitions from Pendulum's own reset and full torques,

trained together (one ``vmap``ed call) and each used for MPC from the same start states
(models x episodes is one ``vmap``); the true dynamics (oracle, gap 0 by construction) is
the reference.

  .venv/bin/python examples/model_bias.py --quick --out out/model_bias

writes ``model_bias.json`` (config, numbers, timings) and ``model_bias.png`` to ``--out`` and
prints the tables. ``--quick`` (smaller models and planner, shorter episodes) is a smoke run.
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
from jaxmbrl.diagnostics import plan_trace, summarize, window_returns
from jaxmbrl.envs import gymnax_adapter, load, make, random_episodes
from jaxmbrl.planners import MBRL_LIB_OPTIONS
from jaxmbrl.planners.registry import PlannerSpec, build
from jaxmbrl.rollouts import RolloutConfig, make_particle_objective
from jaxmbrl.types import Array, PRNGKey


def point_mass_part(args, key: PRNGKey) -> dict:
    """Plan with point-mass models of several gains (the real gain is 0.1)."""
    gym_env, base = make("PointMass-v0")
    gains, goals = jnp.asarray(args.gains), jnp.asarray(args.goals)
    # mbrl-lib's CEM (truncated sampling inside the bounds, its initial spread and step), as
    # the lesson measured it: with the library's default (clipped) CEM the biased model's
    # plan saturates at the bound.
    options = {
        "num_samples": 100,
        "num_elites": 10,
        "num_iterations": 5,
        **MBRL_LIB_OPTIONS,
    }
    action_space = gymnax_adapter.spec("PointMass-v0", gym_env, base).action
    planner, _ = build(PlannerSpec("cem", horizon=args.pm_horizon, options=options), action_space)

    def one(gain, goal, k):
        params = base.replace(goal=goal, max_steps_in_episode=args.pm_steps)
        env = gymnax_adapter.functions(gym_env, params)
        # The model is the point mass with another gain; planning with it is planning with
        # its true dynamics (its oracle objective).
        model = gymnax_adapter.functions(gym_env, params.replace(gain=gain))
        return plan_trace(
            env, planner, mpc.oracle(model), k, num_steps=args.pm_steps, one_step=True
        )

    run = jax.jit(
        jax.vmap(jax.vmap(jax.vmap(one, (None, None, 0)), (None, 0, None)), (0, None, None))
    )
    keys = jax.random.split(key, args.episodes)
    trace = jax.block_until_ready(run(gains, goals, keys))  # [G, Goals, S, T]
    rows = []
    for i, g in enumerate(args.gains):
        tr_g = jax.tree.map(lambda x, i=i: x[i], trace)
        s = summarize(tr_g, args.pm_horizon)
        s["gain"] = g
        s["per_goal"] = {
            f"{goal:g}": summarize(jax.tree.map(lambda x, j=j: x[j], tr_g), args.pm_horizon)
            for j, goal in enumerate(args.goals)
        }
        rows.append(s)
    curves = {
        "imagined": np.asarray(trace.imagined[:, 0, 0]).tolist(),
        "open_loop": np.asarray(trace.open_loop[:, 0, 0]).tolist(),
        "closed_loop": window_returns(np.asarray(trace.reward[:, 0, 0]), args.pm_horizon).tolist(),
        "reward": np.asarray(trace.reward[:, 0, 0]).tolist(),
    }
    return {"models": rows, "curves_first_goal_first_seed": curves}


# --- Part B: learned Pendulum-v1 models ------------------------------------------------------


def narrow_episodes(env, params, key, num_episodes: int, num_steps: int, spread: float, torque):
    """Random episodes near hanging down: ``theta ~ pi + U(-spread, spread)``, ``theta_dot ~
    U(-spread, spread)``, actions uniform in ``[-torque, torque]``; ``[B, T, ...]`` arrays."""

    def episode(k):
        k_th, k_dot, k_act, k_reset = jax.random.split(k, 4)
        _, state = env.reset_env(k_reset, params)
        state = state.replace(
            theta=jnp.pi + jax.random.uniform(k_th, (), jnp.float32, -spread, spread),
            theta_dot=jax.random.uniform(k_dot, (), jnp.float32, -spread, spread),
        )
        actions = jax.random.uniform(k_act, (num_steps, 1), jnp.float32, -torque, torque)

        def step(s, a):
            o = env.get_obs(s)
            o2, s2, *_ = env.step_env(k, s, a, params)
            return s2, (o, a, o2)

        return jax.lax.scan(step, state, actions)[1]

    return jax.vmap(episode)(jax.random.split(key, num_episodes))


def pendulum_datasets(args, key: PRNGKey) -> dict[str, tuple[Array, Array, Array]]:
    """The three training sets, each ``(obs [R, 3], action [R, 1], next_obs [R, 3])``."""
    env, params = make("Pendulum-v1")
    rows = args.adequate_episodes * 200
    k_little, k_narrow, k_adequate = jax.random.split(key, 3)

    def flat(*xs):
        return tuple(x.reshape(-1, x.shape[-1]) for x in xs)

    d = jax.jit(lambda k: random_episodes(env, params, k, args.adequate_episodes, 200))(k_adequate)
    adequate = flat(d.obs, d.action, d.next_obs)
    # Few transitions from short episodes (several start states); tiled to `rows` rows.
    little_eps = -(-args.little_transitions // 50)
    d = jax.jit(lambda k: random_episodes(env, params, k, little_eps, 50))(k_little)
    little = tuple(x[: args.little_transitions] for x in flat(d.obs, d.action, d.next_obs))
    reps = -(-rows // args.little_transitions)
    little = tuple(jnp.tile(x, (reps, 1))[:rows] for x in little)
    narrow = jax.jit(
        lambda k: narrow_episodes(env, params, k, args.adequate_episodes, 200, 0.5, 0.5)
    )(k_narrow)
    narrow = flat(*narrow)
    return {"little": little, "narrow": narrow, "adequate": adequate}


def pendulum_part(args, key: PRNGKey, timings: dict) -> dict:
    """Train the three ensembles (one vmapped call) and plan MPC episodes with each."""
    spec, env = load("Pendulum-v1")
    gym_env, params = make("Pendulum-v1")
    k_data, k_train, k_eval = jax.random.split(key, 3)

    t = time.perf_counter()
    data = pendulum_datasets(args, k_data)
    names = list(data)
    stacked = [jnp.stack([data[n][i] for n in names]) for i in range(3)]  # [3, R, ...]
    jax.block_until_ready(stacked)
    timings["pendulum_data_s"] = time.perf_counter() - t

    model_cfg = models.EnsembleConfig(
        obs_dim=3, action_dim=1, num_members=5, num_elites=3, hidden_sizes=args.hidden
    )
    train_cfg = models.TrainConfig(learning_rate=1e-3, max_epochs=args.epochs, patience=args.epochs)
    t = time.perf_counter()
    train = jax.jit(
        jax.vmap(lambda k, o, a, n: models.train(model_cfg, train_cfg, k, None, o, a, n))
    )
    ensembles, logs = jax.block_until_ready(train(jax.random.split(k_train, 3), *stacked))
    timings["pendulum_train_s"] = time.perf_counter() - t

    # Held-out one-step error of each model on fresh random transitions (normalised MSE).
    d = jax.jit(lambda k: random_episodes(gym_env, params, k, 5, 200))(
        jax.random.fold_in(k_eval, 1)
    )
    held = tuple(x.reshape(-1, x.shape[-1]) for x in (d.obs, d.action, d.next_obs))
    held_err = jax.vmap(lambda s: models.evaluate(model_cfg, s, *held))(ensembles)  # [3, E]

    options = {
        "num_samples": args.num_samples,
        "num_elites": max(1, args.num_samples // 10),
        "num_iterations": args.num_iterations,
    }
    planner, _ = build(PlannerSpec("cem", horizon=args.horizon, options=options), spec.action)
    rollout = RolloutConfig(num_particles=1, propagation="expectation")

    def model_objective(model) -> mpc.ObjectiveFactory:
        """Particle rollouts through the ensemble ``model`` from the observation."""
        grouped = functools.partial(models.predict_grouped, model_cfg, model)

        def make_objective(env_state, obs):
            del env_state  # a learned model sees only the observation
            return make_particle_objective(
                rollout, grouped, obs, num_members=model_cfg.num_elites, reward_fn=env.reward_fn
            )

        return make_objective

    keys = jax.random.split(k_eval, args.episodes)
    episode = functools.partial(plan_trace, env, planner, num_steps=args.steps)

    t = time.perf_counter()
    run_models = jax.jit(
        jax.vmap(jax.vmap(lambda m, k: episode(model_objective(m), k), (None, 0)), (0, None))
    )
    traces = jax.block_until_ready(run_models(ensembles, keys))  # [3, S, T]
    timings["pendulum_mpc_models_s"] = time.perf_counter() - t
    t = time.perf_counter()
    run_oracle = jax.jit(jax.vmap(lambda k: episode(mpc.oracle(env), k)))
    oracle = jax.block_until_ready(run_oracle(keys))  # [S, T]
    timings["pendulum_mpc_oracle_s"] = time.perf_counter() - t

    rows = []
    for i, name in enumerate(names):
        s = summarize(jax.tree.map(lambda x, i=i: x[i], traces), args.horizon)
        elite = np.asarray(ensembles.elite_idx[i])
        s.update(
            data=name,
            distinct_transitions=args.little_transitions
            if name == "little"
            else int(data[name][0].shape[0]),
            val_error_elites=np.asarray(logs.val_error[i])[elite].tolist(),
            heldout_error_elites=np.asarray(held_err[i])[elite].tolist(),
        )
        rows.append(s)
    s = summarize(oracle, args.horizon)
    s.update(data="oracle (true dynamics)", distinct_transitions=0)
    rows.append(s)
    return {"models": rows, "model_config": model_cfg.to_dict(), "train_config": train_cfg}


# --- the script --------------------------------------------------------------------------------


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short: a smoke run")
    parser.add_argument("--out", default="out/model_bias", help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=None, help="episodes per model")
    parser.add_argument("--horizon", type=int, default=None, help="Pendulum planning horizon H")
    parser.add_argument("--little", type=int, default=300, help="transitions of 'little'")
    parser.add_argument("--skip-pendulum", action="store_true", help="only Part A")
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    quick = args.quick
    cfg = argparse.Namespace(
        gains=[0.1, 0.05, 0.2],
        goals=[0.53, 0.27, 0.81],
        pm_horizon=10,
        pm_steps=30,
        episodes=args.episodes or (2 if quick else 4),
        horizon=args.horizon or (15 if quick else 30),
        steps=60 if quick else 200,
        num_samples=50 if quick else 100,
        num_iterations=2 if quick else 3,
        little_transitions=args.little,
        adequate_episodes=8 if quick else 30,
        hidden=(64, 64) if quick else (128, 128, 128),
        epochs=20 if quick else 60,
    )
    k_pm, k_pend = jax.random.split(jax.random.key(args.seed))
    timings: dict[str, float] = {}

    t = time.perf_counter()
    part_a = point_mass_part(cfg, k_pm)
    timings["point_mass_s"] = time.perf_counter() - t
    part_b = None if args.skip_pendulum else pendulum_part(cfg, k_pend, timings)
    timings["total_s"] = time.perf_counter() - t_start

    config = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(cfg).items()}
    config.update(quick=quick, seed=args.seed, planner="cem")
    if part_b is not None:
        config["pendulum_model"] = part_b.pop("model_config")
        config["pendulum_train"] = dataclasses.asdict(part_b.pop("train_config"))
        config["pendulum_propagation"] = "expectation"
    result = {
        "measure": {
            "imagined": "model's H-step return of the chosen plan (PlanInfo.solution) from s_t",
            "expected": "PlanInfo.expected_return (CEM: mean return of the last elites)",
            "open_loop": "true env's H-step return of the same plan executed blind from s_t",
            "closed_loop": "real r_t + ... + r_{t+H-1} collected by MPC (replanning) from s_t",
            "averaging": "mean over t = 0..T-H, then over episodes",
        },
        "config": config,
        "point_mass": part_a,
        "pendulum": part_b,
        "timings": timings,
    }
    reporting.write_json(out_dir / "model_bias.json", result)
    _plot(result, out_dir / "model_bias.png")
    _print(result)
    print(f"wrote {out_dir}/model_bias.{{json,png}} in {timings['total_s']:.1f}s")
    return result


def _print(result: dict) -> None:
    cols = ("imagined", "open_loop", "closed_loop", "gap_open", "gap_closed", "real_return")
    head = "".join(f"{c:>12}" for c in cols)
    h_pm = result["config"]["pm_horizon"]
    print(f"\nA. point mass (true gain 0.1), H={h_pm}-step returns from the same real states")
    print(f"{'model gain':<24}{head}{'1-step imag':>12}")
    for r in result["point_mass"]["models"]:
        vals = "".join(f"{r[c]:>12.3f}" for c in cols)
        print(f"{r['gain']:<24}{vals}{r['imagined_one_step_return']:>12.3f}")
    if result["pendulum"] is None:
        return
    h = result["config"]["horizon"]
    print(f"\nB. Pendulum-v1, learned ensembles, H={h}-step returns from the same real states")
    print(f"{'data':<24}{head}{'held-out err':>13}")
    for r in result["pendulum"]["models"]:
        vals = "".join(f"{r[c]:>12.2f}" for c in cols)
        err = r.get("heldout_error_elites")
        err_s = f"{np.mean(err):>13.4f}" if err else f"{'-':>13}"
        print(f"{r['data']:<24}{vals}{err_s}")


def _plot(result: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = 3 if result["pendulum"] is not None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 4.3))
    curves = result["point_mass"]["curves_first_goal_first_seed"]
    gains = result["config"]["gains"]
    ax = axes[0]
    for i, g in enumerate(gains):
        (line,) = ax.plot(curves["imagined"][i], label=f"{g}u: imagined")
        ax.plot(curves["open_loop"][i], "--", color=line.get_color(), label=f"{g}u: open loop")
        ax.plot(curves["closed_loop"][i], ":", color=line.get_color(), label=f"{g}u: closed loop")
    ax.set_title(f"A. point mass, goal {result['config']['goals'][0]}, H-step returns")
    ax.set_xlabel("real step t")
    ax.set_ylabel("H-step return from s_t")
    ax.legend(fontsize=7)

    def bars(ax, rows, labels, title):
        keys = ("imagined", "open_loop", "closed_loop")
        x = np.arange(len(rows))
        for j, k in enumerate(keys):
            ax.bar(x + (j - 1) * 0.27, [r[k] for r in rows], 0.27, label=k)
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_title(title)
        ax.axhline(0, color="k", lw=0.5)
        ax.legend(fontsize=8)

    rows = result["point_mass"]["models"]
    bars(axes[1], rows, [f"{r['gain']}u" for r in rows], "A. mean H-step return (all goals)")
    if result["pendulum"] is not None:
        rows = result["pendulum"]["models"]
        bars(axes[2], rows, [r["data"].split(" ")[0] for r in rows], "B. Pendulum-v1, mean H-step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
