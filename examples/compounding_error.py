#!/usr/bin/env python
"""Compounding model error: open-loop prediction error against horizon on Pendulum-v1.

Trains a single deterministic model and a probabilistic ensemble (PETS' model: Gaussian
heads, elites) on random-action Pendulum-v1 transitions (gymnax ``step_env``), then rolls both
forward open loop along held-out trajectories with the true actions, and plots the error of
the predicted observation against the number of steps predicted (1..H).

The ensemble is rolled out TS-infinity style with means: each elite member follows its own
trajectory. Plotted are the error of the elites' average trajectory, the average error of the
single members, and the elites' spread (the standard deviation across members, the model's
own estimate of its epistemic error).

  .venv/bin/python examples/compounding_error.py --quick --out out/compounding

writes ``compounding_error.json`` and ``compounding_error.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import models, reporting
from jaxmbrl.envs import make, random_episodes

EPISODE = 200  # Pendulum-v1's episode length


def pendulum_episodes(key, episodes: int):
    """Random-action episodes: ``obs [N, T, 3]``, ``action [N, T, 1]``, ``next_obs [N, T, 3]``.

    ``step_env`` is pure dynamics with no auto-reset (gymnax 1.x's ``step`` returns 6 values
    and resets at episode end, which open-loop comparisons must not do).
    """
    env, params = make("Pendulum-v1")
    data = jax.jit(lambda k: random_episodes(env, params, k, episodes, EPISODE))(key)
    return data.obs, data.action, data.next_obs


def flat(x):
    return x.reshape(-1, x.shape[-1])


def open_loop(config, state, obs0, actions):
    """Roll each elite forward on its mean prediction.

    Args:
      obs0: ``[S, O]`` start observations; actions: ``[S, H, A]``.

    Returns:
      ``[H, K, S, O]`` predicted observations after 1..H steps, one trajectory per elite.
    """
    k = config.num_elites
    obs = jnp.broadcast_to(obs0, (k, *obs0.shape))

    def step(obs, a):
        mean, _ = models.predict_grouped(config, state, obs, jnp.broadcast_to(a, (k, *a.shape)))
        nxt = obs + mean[..., : config.obs_dim]
        return nxt, nxt

    return jax.lax.scan(step, obs, jnp.swapaxes(actions, 0, 1))[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models, runs < 2 min")
    parser.add_argument("--out", default="out/compounding_error", help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizon", type=int, default=50)
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    if args.quick:
        train_episodes, test_episodes, hidden, members, elites, epochs = 25, 8, (128,) * 3, 5, 3, 25
    else:
        train_episodes, test_episodes, hidden, members, elites, epochs = (
            100,
            20,
            (200,) * 4,
            7,
            5,
            60,
        )
    k_data, k_test, k_single, k_ens = jax.random.split(jax.random.key(args.seed), 4)
    obs, act, next_obs = pendulum_episodes(k_data, train_episodes)
    data = (flat(obs), flat(act), flat(next_obs))
    # The same number of epochs for both models (patience off; each keeps its best epoch):
    # with patience, a single model stops sooner than an ensemble, whose patience resets
    # whenever any member improves, and the comparison would be about training length.
    train_cfg = models.TrainConfig(learning_rate=1e-3, max_epochs=epochs, patience=epochs)

    single_cfg = models.EnsembleConfig(
        obs_dim=3,
        action_dim=1,
        num_members=1,
        num_elites=1,
        hidden_sizes=hidden,
        deterministic=True,
    )
    ens_cfg = models.EnsembleConfig(
        obs_dim=3, action_dim=1, num_members=members, num_elites=elites, hidden_sizes=hidden
    )
    single, single_log = models.train(single_cfg, train_cfg, k_single, None, *data)
    ens, ens_log = models.train(ens_cfg, train_cfg, k_ens, None, *data)

    # Held-out trajectories: start points every 25 steps that leave H steps of truth.
    t_obs, t_act, t_next = pendulum_episodes(k_test, test_episodes)
    h = args.horizon
    starts = np.arange(0, EPISODE - h + 1, 25)
    obs0 = flat(t_obs[:, starts])  # [S, O]
    acts = jnp.stack([t_act[:, s : s + h] for s in starts], 1).reshape(-1, h, 1)  # [S, H, A]
    truth = jnp.stack([t_next[:, s : s + h] for s in starts], 1).reshape(-1, h, 3)  # [S, H, O]
    truth = jnp.swapaxes(truth, 0, 1)  # [H, S, O]

    pred_single = jax.jit(lambda s: open_loop(single_cfg, s, obs0, acts))(single)[:, 0]
    pred_ens = jax.jit(lambda s: open_loop(ens_cfg, s, obs0, acts))(ens)  # [H, K, S, O]

    err = lambda pred: jnp.linalg.norm(pred - truth, axis=-1)  # [H, S]
    single_err = err(pred_single).mean(-1)
    ens_mean_err = err(pred_ens.mean(1)).mean(-1)
    member_err = jax.vmap(err, in_axes=1)(pred_ens).mean((0, 2))
    spread = jnp.linalg.norm(pred_ens.std(1), axis=-1).mean(-1)
    horizons = list(range(1, h + 1))
    result = {
        "env": "Pendulum-v1",
        "quick": args.quick,
        "seed": args.seed,
        "train_transitions": int(data[0].shape[0]),
        "held_out_starts": int(obs0.shape[0]),
        "error": "mean over held-out starts of ||predicted obs - true obs||_2 (obs units)",
        "single_model": {
            "config": single_cfg.to_dict(),
            "val_error": float(single_log.val_error[0]),
            "epochs": int(single_log.num_epochs),
        },
        "ensemble": {
            "config": ens_cfg.to_dict(),
            "val_error_elites": np.asarray(ens_log.val_error)[np.asarray(ens.elite_idx)].tolist(),
            "epochs": int(ens_log.num_epochs),
        },
        "horizon": horizons,
        "single_error": np.asarray(single_err).tolist(),
        "ensemble_mean_error": np.asarray(ens_mean_err).tolist(),
        "ensemble_member_error": np.asarray(member_err).tolist(),
        "ensemble_spread": np.asarray(spread).tolist(),
    }

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(horizons, result["single_error"], label="single deterministic model")
    ax.plot(
        horizons,
        result["ensemble_mean_error"],
        label=f"ensemble ({elites} elites), mean trajectory",
    )
    ax.plot(horizons, result["ensemble_member_error"], "--", label="ensemble, single member (avg)")
    ax.plot(horizons, result["ensemble_spread"], ":", label="ensemble spread (std across elites)")
    ax.set_xlabel("steps predicted open loop")
    ax.set_ylabel("||obs error||  (Pendulum-v1 obs units)")
    ax.set_yscale("log")
    ax.set_title("Compounding model error on held-out Pendulum-v1 trajectories")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "compounding_error.png", dpi=120)
    plt.close(fig)

    result["wall_s"] = time.perf_counter() - t_start
    reporting.write_json(out_dir / "compounding_error.json", result)
    for i in (0, 9, 24, h - 1):
        if i < h:
            print(
                f"H={i + 1:3d}  single {single_err[i]:.4f}  ensemble mean {ens_mean_err[i]:.4f}"
                f"  member {member_err[i]:.4f}  spread {spread[i]:.4f}"
            )
    print(f"wrote {out_dir}/compounding_error.{{json,png}} in {result['wall_s']:.1f}s")
    return result


if __name__ == "__main__":
    main()
