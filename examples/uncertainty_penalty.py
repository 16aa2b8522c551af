"""Ensembles and the uncertainty penalty: plan with ``mean - lambda * std`` on narrow data.

The lesson's mitigations for model bias include "ensembles -- disagreement signals
uncertainty; avoid risky imagined paths" and "penalise uncertainty in the planning
objective". This example measures both on Pendulum-v1 (swing-up from hanging down), with a
Gaussian ensemble (5 members, all elites) trained on limited data in one of two regimes:

* ``narrow``: random-action episodes that start hanging down; the data never sees the
  pendulum above the horizontal, so the goal (upright) lies outside the data;
* ``sparse``: a few one-step transitions from states uniform over the whole phase space;
  the goal is inside the data, but the data is thin everywhere.

Every seed collects its own data and trains its own ensemble (``vmap`` over the seeds of
:func:`jaxmbrl.models.training.train`). Then MPPI plans every real step through the
ensemble with :func:`jaxmbrl.make_particle_objective` and ``risk="mean_std"``: the score of a
candidate is the mean of its particle returns minus ``lambda`` times their standard deviation
(``lambda = 0`` is the plain mean), with TS1, TS-infinity or expectation propagation
(``RolloutConfig.propagation``). With TS-infinity and ``P = K`` particles every particle
follows one member, so the std is the members' disagreement about the return. Expectation
propagation has one deterministic particle, so it has no spread to penalise: it runs with
``lambda = 0`` (``risk="mean"``) only, and ``RolloutConfig`` refuses ``mean_std`` there
rather than silently ignoring ``lambda``.

Measured per configuration, for each seed (the seeds run as one ``vmap`` of the library's
MPC episode, :func:`jaxmbrl.mpc.run_episode`, a whole ``lax.scan``):

* the real return;
* how far the agent strays outside its data: the ensemble disagreement along the real
  trajectory (``jaxmbrl.models.disagreement``, the std of the member means of ``obs' - obs``
  in units of the training targets' std, norm over the 3 observation dims), the distance of
  each visited observation to the nearest training observation (per-dim, in units of the
  training data's std) and the share of steps farther than 1 from every training state;
* the model's optimism: the imagined, risk-neutral return of each executed plan over ``H``
  steps minus the real return of the next ``H`` steps (averaged over the episode; positive =
  the model promised more than reality gave).

Measured in full mode (6 seeds, 200 steps, MPPI H 25, 100 x 3; the project's shared 2-core
CPU, jax 0.10.2; 3.5 min), mean over seeds:

* narrow data: TS-infinity with lambda 0 / 1 / 3: distance to data 4.4 / 3.4 / 1.9, share of
  steps outside 0.82 / 0.72 / 0.56, disagreement 0.73 / 0.60 / 0.41 -- the penalty keeps the
  agent nearer its data -- but the real return falls, -1166 / -1215 / -1308 (no
  configuration swings up: the goal is outside the data). TS1 moves less (distance 4.1 ->
  3.4, return -1194 -> -1228). Expectation: -1198 with either lambda, as it must.
* sparse data: nothing is outside the data (share 0.00 everywhere) and the penalty only
  costs return: TS-infinity -561 / -619 / -821, TS1 -579 / -627 / -635. Expectation
  propagation, the only optimistic one here (optimism +8 against -14 to -24), returned
  -632 with one seed at -1545.

On this task the penalty does what the lesson says it does -- it avoids uncertain paths --
but that never raised the real return.

The lesson's first "common mistake" (planning too far ahead with a weak model) is the
subject of ``horizon_gap.py``; the other rows are in ``common_mistakes.py``.

  .venv/bin/python examples/uncertainty_penalty.py --quick --out runs/uncertainty_penalty

writes ``uncertainty_penalty.json`` (settings, versions, per-configuration results and
timings) and ``uncertainty_penalty.png`` (return, distance and disagreement against lambda,
and the phase portrait of the real trajectories over the training data) to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import pathlib
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxmbrl
from jaxmbrl import mpc, reporting
from jaxmbrl.envs import flatten, gymnax_adapter, make, random_episodes
from jaxmbrl.envs.pendulum import HangingPendulum, uniform_transitions
from jaxmbrl.models import ensemble, training
from jaxmbrl.planners.registry import PlannerSpec, build

ENV_NAME = "Pendulum-v1"
REGIMES = ("narrow", "sparse")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every size of the experiment (hashable).

    Attributes:
      num_seeds: ``S``, seeds run side by side (each with its own data and ensemble).
      num_steps: ``T``, real steps per episode (Pendulum's episode is 200).
      narrow_episodes, narrow_steps: the ``narrow`` data: this many random-action episodes
        of this many steps from a hanging start.
      narrow_start_width: half-width of the narrow data's start angle and speed around
        hanging down at rest.
      sparse_transitions: the ``sparse`` data: one-step transitions from uniform states.
      eval_start_width: half-width of the evaluation start around hanging down at rest.
      hidden_sizes, ensemble_size: the ensemble (all members are elites).
      max_epochs, patience: training.
      horizon, num_samples, num_iterations: MPPI's ``H``, ``N`` and iterations.
      num_particles: ``P`` for TS1 and TS-infinity (expectation uses 1).
      lambdas: the penalty weights; expectation runs with lambda 0 only (no spread).
      propagations: which propagations to run.
    """

    num_seeds: int
    num_steps: int
    narrow_episodes: int
    narrow_steps: int
    narrow_start_width: float
    sparse_transitions: int
    eval_start_width: float
    hidden_sizes: tuple[int, ...]
    ensemble_size: int
    max_epochs: int
    patience: int
    horizon: int
    num_samples: int
    num_iterations: int
    num_particles: int
    lambdas: tuple[float, ...]
    propagations: tuple[str, ...] = ("expectation", "ts1", "tsinf")


QUICK = Settings(
    num_seeds=2,
    num_steps=40,
    narrow_episodes=4,
    narrow_steps=50,
    narrow_start_width=0.5,
    sparse_transitions=100,
    eval_start_width=0.3,
    hidden_sizes=(32, 32),
    ensemble_size=5,
    max_epochs=40,
    patience=40,
    horizon=10,
    num_samples=30,
    num_iterations=2,
    num_particles=5,
    lambdas=(0.0, 3.0),
)
FULL = Settings(
    num_seeds=6,
    num_steps=200,
    narrow_episodes=5,
    narrow_steps=100,
    narrow_start_width=0.5,
    sparse_transitions=100,
    eval_start_width=0.3,
    hidden_sizes=(64, 64),
    ensemble_size=5,
    max_epochs=300,
    patience=30,
    horizon=25,
    num_samples=100,
    num_iterations=3,
    num_particles=5,
    lambdas=(0.0, 1.0, 3.0),
)


class Data(NamedTuple):
    """Training transitions of one seed: ``obs [D, 3]``, ``action [D, 1]``, ``next_obs [D, 3]``."""

    obs: jax.Array
    action: jax.Array
    next_obs: jax.Array


def narrow_data(s: Settings, env_params, key: jax.Array) -> Data:
    """Random-action episodes from a hanging start (``step_env``: no auto-reset)."""
    env = HangingPendulum(s.narrow_start_width)
    d = flatten(random_episodes(env, env_params, key, s.narrow_episodes, s.narrow_steps))
    return Data(d.obs, d.action, d.next_obs)


def sparse_data(s: Settings, env_params, key: jax.Array) -> Data:
    """The ``sparse`` regime: :func:`uniform_transitions`."""
    obs, action, next_obs, _, _ = uniform_transitions(env_params, key, s.sparse_transitions)
    return Data(obs, action, next_obs)


def model_config(s: Settings) -> ensemble.EnsembleConfig:
    return ensemble.EnsembleConfig(
        obs_dim=3,
        action_dim=1,
        num_members=s.ensemble_size,
        num_elites=s.ensemble_size,
        hidden_sizes=s.hidden_sizes,
    )


def train_config(s: Settings) -> training.TrainConfig:
    return training.TrainConfig(
        learning_rate=1e-3, max_epochs=s.max_epochs, patience=s.patience, batch_size=128
    )


def collect_and_train(s: Settings, regime: str, env_params, keys: jax.Array):
    """``S`` seeds at once: each collects its own data and trains its own ensemble.

    Returns:
      ``(data, model_state, log)``, every leaf with a leading ``[S]`` axis.
    """
    collect = narrow_data if regime == "narrow" else sparse_data
    mc, tc = model_config(s), train_config(s)

    def one(key):
        k_data, k_train = jax.random.split(key)
        data = collect(s, env_params, k_data)
        state, log = training.train(mc, tc, k_train, None, data.obs, data.action, data.next_obs)
        return data, state, log

    return jax.jit(jax.vmap(one))(keys)


class Trajectory(NamedTuple):
    """One real episode (``[S, T, ...]`` under the seed ``vmap``).

    Attributes:
      obs: ``[T, 3]`` the observation each action was planned from.
      action: ``[T, 1]``.
      reward: ``[T]`` real rewards.
      imagined: ``[T]`` the risk-neutral imagined ``H``-step return of the executed plan.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    imagined: jax.Array


def make_episodes(s: Settings, rollout: jaxmbrl.RolloutConfig, env, env_params):
    """``episodes(model_states [S], keys [S]) -> Trajectory [S, T]`` (not jitted).

    Each seed runs one MPC episode of the library (:func:`jaxmbrl.mpc.run_episode`, one
    ``lax.scan``; the seeds under ``vmap``) in the gymnax environment ``env``: MPPI
    (``s.horizon``, ``s.num_samples``, ``s.num_iterations``) plans every real step through the
    seed's ensemble (every member an elite) with ``rollout``. Afterwards the plan executed at
    every step (``EpisodeRecord.solutions``) is scored again risk-neutrally (``imagined``).
    """
    mc = model_config(s)
    real_env = gymnax_adapter.functions(env, env_params, ENV_NAME)  # reset, step, reward_fn
    action = gymnax_adapter.spec(ENV_NAME, env, env_params).action
    options = {"num_samples": s.num_samples, "num_iterations": s.num_iterations}
    planner, _ = build(PlannerSpec("mppi", horizon=s.horizon, options=options), action)
    neutral = dataclasses.replace(rollout, risk="mean", risk_lambda=0.0)

    def episode(model_state, key) -> Trajectory:
        model = functools.partial(ensemble.predict_grouped, mc, model_state)

        def objective(config, obs):
            return jaxmbrl.make_particle_objective(
                config, model, obs, num_members=mc.num_elites, reward_fn=real_env.reward_fn
            )

        record = mpc.run_episode(
            real_env,
            planner,
            key,
            num_steps=s.num_steps,
            make_objective=lambda env_state, obs: objective(rollout, obs),
        )
        score_keys = jax.random.split(jax.random.fold_in(key, 1), s.num_steps)
        neutral_objective = lambda env_state, obs: objective(neutral, obs)
        imagined = mpc.rescore(neutral_objective, record, score_keys)
        return Trajectory(record.observations, record.actions, record.rewards, imagined)

    return jax.vmap(episode)


@functools.partial(jax.jit, static_argnames=("s", "horizon"))
def measure(s: Settings, horizon: int, data: Data, model_states, traj: Trajectory) -> dict:
    """Per-seed metrics (every value ``[S]``) of episodes ``traj`` with ensembles trained on
    ``data``; see the module docstring."""
    mc = model_config(s)

    def one(data, state, traj):
        spread = ensemble.disagreement(mc, state, traj.obs, traj.action)  # [T, 3]
        spread = jnp.linalg.norm(spread / state.normalizer.out_std[None], axis=-1)
        std = jnp.std(data.obs, axis=0)
        diff = (traj.obs[:, None] - data.obs[None]) / std[None, None]  # [T, D, 3]
        nearest = jnp.sqrt(jnp.min(jnp.sum(jnp.square(diff), axis=-1), axis=-1))  # [T]
        t = traj.reward.shape[0]
        windows = jnp.arange(t - horizon + 1)[:, None] + jnp.arange(horizon)[None]
        real_h = jnp.sum(traj.reward[windows], axis=-1)  # [T - H + 1]
        optimism = traj.imagined[: t - horizon + 1] - real_h
        return {
            "return": jnp.sum(traj.reward),
            "disagreement": jnp.mean(spread),
            "disagreement_max": jnp.max(spread),
            "distance_to_data": jnp.mean(nearest),
            "share_outside_data": jnp.mean((nearest > 1.0).astype(jnp.float32)),
            "optimism": jnp.mean(optimism),
        }

    return jax.vmap(one)(data, model_states, traj)


def configurations(s: Settings) -> list[tuple[str, float]]:
    """``(propagation, lambda)`` pairs; expectation with lambda 0 only (its one deterministic
    particle has no spread to penalise: ``RolloutConfig`` rejects ``mean_std`` there)."""
    out = []
    for prop in s.propagations:
        lams = (0.0,) if prop == "expectation" else s.lambdas
        out.extend((prop, float(lam)) for lam in dict.fromkeys(lams))
    return out


def _angle(obs: np.ndarray) -> np.ndarray:
    """``theta mod 2 pi`` from Pendulum observations ``[..., 3]`` (``pi`` = hanging down)."""
    return np.mod(np.arctan2(obs[..., 1], obs[..., 0]), 2 * np.pi)


def summary_stats(values) -> dict:
    """``{"mean", "min", "max"}`` of per-seed values, as floats."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}


def run_regime(s: Settings, regime: str, key: jax.Array, compiled: dict) -> dict:
    """Train the seeds' ensembles on ``regime`` data and run every configuration."""
    env_params = make(ENV_NAME)[1]
    eval_env = HangingPendulum(s.eval_start_width)
    k_models, k_episodes = jax.random.split(key)
    t0 = time.perf_counter()
    data, states, log = jax.block_until_ready(
        collect_and_train(s, regime, env_params, jax.random.split(k_models, s.num_seeds))
    )
    train_s = time.perf_counter() - t0
    episode_keys = jax.random.split(k_episodes, s.num_seeds)  # the same starts for every config
    theta_data = _angle(np.asarray(data.obs))
    out = {
        "data_transitions": int(data.obs.shape[1]),
        "train_s": train_s,
        "epochs": [int(e) for e in np.asarray(log.num_epochs)],
        "val_error": [float(np.mean(v)) for v in np.asarray(log.val_error)],
        "data_cos_theta_max": float(np.max(np.asarray(data.obs[..., 0]))),
        "data_speed_abs_max": float(np.max(np.abs(np.asarray(data.obs[..., 2])))),
        "configs": [],
        "_plot": {"theta": theta_data[0].tolist(), "speed": np.asarray(data.obs[0, :, 2]).tolist()},
    }
    for prop, lam in configurations(s):
        particles = 1 if prop == "expectation" else s.num_particles
        risk = "mean" if prop == "expectation" else "mean_std"
        rollout = jaxmbrl.RolloutConfig(
            num_particles=particles, propagation=prop, risk=risk, risk_lambda=lam
        )
        t0 = time.perf_counter()
        if rollout not in compiled:  # one compile per configuration, shared by the regimes
            fn = jax.jit(make_episodes(s, rollout, eval_env, env_params))
            compiled[rollout] = fn.lower(states, episode_keys).compile()
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        traj = jax.block_until_ready(compiled[rollout](states, episode_keys))
        run_s = time.perf_counter() - t0
        metrics = {k: np.asarray(v) for k, v in measure(s, s.horizon, data, states, traj).items()}
        theta = _angle(np.asarray(traj.obs[0]))
        out["configs"].append(
            {
                "propagation": prop,
                "lambda": lam,
                "num_particles": particles,
                "per_seed": {k: [float(x) for x in v] for k, v in metrics.items()},
                **{k: summary_stats(v) for k, v in metrics.items()},
                "compile_s": compile_s,
                "run_s": run_s,
                "_plot": {"theta": theta.tolist(), "speed": np.asarray(traj.obs[0, :, 2]).tolist()},
            }
        )
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test, < 1 min)")
    parser.add_argument("--out", default="runs/uncertainty_penalty", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--regimes",
        default=None,
        help="comma-separated data regimes from narrow,sparse (default: narrow with --quick, "
        "both otherwise)",
    )
    parser.add_argument(
        "--lambdas", default=None, help="comma-separated penalty weights (default: settings')"
    )
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    if args.lambdas:
        s = dataclasses.replace(s, lambdas=tuple(float(v) for v in args.lambdas.split(",")))
    regimes = (args.regimes or ("narrow" if args.quick else ",".join(REGIMES))).split(",")
    for r in regimes:
        if r not in REGIMES:
            parser.error(f"unknown regime {r!r}; choose from {', '.join(REGIMES)}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    key = jax.random.key(args.seed)
    compiled: dict = {}
    results = {}
    for i, regime in enumerate(regimes):
        results[regime] = run_regime(s, regime, jax.random.fold_in(key, i), compiled)

    plot_data = {r: _pop_plot(res) for r, res in results.items()}
    summary = {
        "env": ENV_NAME,
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "settings": dataclasses.asdict(s)
        | {"hidden_sizes": list(s.hidden_sizes), "lambdas": list(s.lambdas)}
        | {"propagations": list(s.propagations)},
        "planner": "mppi",
        "objective": "mean - lambda * std over particle returns (RolloutConfig risk='mean_std')",
        "metrics": {
            "return": "real episode return",
            "disagreement": "mean over the real trajectory of ||std of member means of "
            "obs'-obs|| in units of the training targets' std",
            "distance_to_data": "mean distance of visited obs to the nearest training obs, "
            "per-dim in units of the training obs std",
            "share_outside_data": "share of steps with distance_to_data > 1",
            "optimism": "imagined risk-neutral H-step return of the executed plan minus the "
            "real return of the next H steps (mean over the episode)",
        },
        "see_also": "horizon_gap.py (planning too far ahead with a weak model); "
        "common_mistakes.py (the lesson's other common mistakes)",
        "versions": reporting.machine_record(),
        "results": results,
        "wall_time_s": time.perf_counter() - t_start,
    }
    reporting.write_json(out / "uncertainty_penalty.json", summary)
    _plot(s, results, plot_data, out / "uncertainty_penalty.png")
    _print_summary(s, results)
    print(f"\nwrote {out / 'uncertainty_penalty.json'} and {out / 'uncertainty_penalty.png'}")
    print(f"total {summary['wall_time_s']:.1f} s")
    return summary


def _pop_plot(res: dict) -> dict:
    """Remove the plotting arrays from a regime's results (they are not summary numbers)."""
    return {
        "data": res.pop("_plot"),
        "configs": [c.pop("_plot") for c in res["configs"]],
    }


def _print_summary(s: Settings, results: dict) -> None:
    print(
        f"{ENV_NAME} swing-up from hanging down, {s.num_seeds} seeds (vmapped), {s.num_steps} "
        f"steps, MPPI H={s.horizon} N={s.num_samples} x {s.num_iterations}, "
        f"{s.ensemble_size}-member Gaussian ensemble, score = mean - lambda * std"
    )
    for regime, res in results.items():
        print(
            f"\n[{regime} data: {res['data_transitions']} transitions per seed, "
            f"max cos(theta) seen {res['data_cos_theta_max']:+.2f}, "
            f"max |theta_dot| {res['data_speed_abs_max']:.1f}]"
        )
        header = (
            f"{'propagation':<12}{'lambda':>7}{'return mean':>12}{'[min, max]':>18}"
            f"{'disagree':>10}{'dist':>8}{'outside':>9}{'optimism':>10}{'run s':>8}"
        )
        print(header + "\n" + "-" * len(header))
        for c in res["configs"]:
            r = c["return"]
            span = f"[{r['min']:.0f}, {r['max']:.0f}]"
            print(
                f"{c['propagation']:<12}{c['lambda']:>7.1f}{r['mean']:>12.1f}"
                f"{span:>18}{c['disagreement']['mean']:>10.3f}"
                f"{c['distance_to_data']['mean']:>8.2f}{c['share_outside_data']['mean']:>9.2f}"
                f"{c['optimism']['mean']:>10.1f}{c['run_s']:>8.1f}"
            )


def _plot(s: Settings, results: dict, plot_data: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [
        ("return", "real return"),
        ("distance_to_data", "distance to nearest training state"),
        ("disagreement", "ensemble disagreement on the real path"),
    ]
    rows = len(results)
    fig, axes = plt.subplots(rows, 4, figsize=(18, 3.8 * rows), squeeze=False)
    colors = {"expectation": "tab:green", "ts1": "tab:blue", "tsinf": "tab:orange"}
    for row, (regime, res) in enumerate(results.items()):
        for col, (name, label) in enumerate(metrics):
            ax = axes[row, col]
            for prop in s.propagations:
                cs = [c for c in res["configs"] if c["propagation"] == prop]
                lam = [c["lambda"] for c in cs]
                mean = np.array([c[name]["mean"] for c in cs])
                lo = mean - np.array([c[name]["min"] for c in cs])
                hi = np.array([c[name]["max"] for c in cs]) - mean
                ax.errorbar(
                    lam, mean, yerr=[lo, hi], marker="o", capsize=3, color=colors[prop], label=prop
                )
            ax.set_xlabel("lambda (score = mean - lambda * std)")
            ax.set_title(f"{regime} data: {label}", fontsize=10)
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel("mean over seeds (bars: min-max)")
        axes[row, 0].legend(fontsize=8)
        ax = axes[row, 3]
        pd = plot_data[regime]
        ax.scatter(
            pd["data"]["theta"], pd["data"]["speed"], s=4, color="lightgrey",
            label="training data (seed 0)",
        )  # fmt: skip
        lam_lo, lam_hi = s.lambdas[0], s.lambdas[-1]
        for c, traj in zip(res["configs"], pd["configs"], strict=True):
            if c["propagation"] == "tsinf" and c["lambda"] in (lam_lo, lam_hi):
                label = f"TS-inf, lambda={c['lambda']:g}"
                ax.plot(traj["theta"], traj["speed"], ".", ms=3, label=label)
        ax.axvline(0.0, color="k", lw=0.5)
        ax.axvline(2 * np.pi, color="k", lw=0.5)
        ax.set_xlim(0, 2 * np.pi)
        ax.set_xlabel("theta mod 2 pi (pi: hanging; 0, 2 pi: upright)")
        ax.set_ylabel("theta_dot")
        ax.set_title(f"{regime} data: real path of seed 0", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
