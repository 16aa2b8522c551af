"""The lesson's "common mistakes" table, run: each mistake's symptom and its fix, measured.

One experiment per row of the table in "Planning with learned models", on Pendulum-v1:

(a) **No normalisation.** The angular velocity is given in degrees per second (scale ~100),
    as a sensor might report it. The same ensemble is trained on the same transitions with
    the library's normaliser switched off (an identity normaliser that is not refitted:
    ``TrainConfig(refit_normalizer=False)``) and on (the default). Measured: the held-out
    MSE of ``obs' - obs`` over its variance (1.0 = predicting the mean) and the training
    loss. The same raw training in radians per second is a control: the mistake bites
    through the scale.
(b) **A deterministic model for a stochastic environment.** Pendulum with a random
    disturbance torque (std ``--noise`` N m) at every step. A deterministic ensemble (MSE
    heads) against a Gaussian ensemble (PETS' NLL heads), same data. Measured on held-out
    transitions: how many outcomes the central 90 % interval of each model's predictive
    distribution covers (the deterministic ensemble's only uncertainty is its members'
    spread), the Gaussian NLL and predicted std / RMS error; then, planning with TS1 from a
    hanging start: the real return and the optimism (imagined ``H``-step return of the
    executed plan minus the real return of the next ``H`` steps).
(c) **Ignoring reward-model error.** The reward is learned. Mistake: a reward model fitted
    separately on a narrow slice of the data (transitions that start below the horizontal)
    and never checked. Fix: the reward trained jointly with ``s'`` (``learn_reward=True``) on
    all data and checked on held-out transitions from states uniform over the phase space,
    near the goal too. Both plan with the same jointly trained dynamics, so only the reward
    differs; the known reward is the reference.
(d) **No real-data refresh.** PETS (:mod:`jaxmbrl.agents.pets`) trains on one random episode;
    the mistake then only plans, episode after episode, with that model (its new real data
    is thrown away); the fix is PETS' own loop, which adds each episode to the buffer and
    retrains. The mistake replays PETS' keys, so in every episode both arms start from the
    same state with the same planning keys (and their first episodes are identical).
    Measured: real return per episode, the model's one-step error on the transitions it
    just visited (MSE / variance, real units) and the optimism (the planner's expected
    ``H``-step return minus the real return of the next ``H`` steps).

Measured in full mode (5 seeds; the project's shared 2-core CPU, jax 0.10.2; about 3 min):

* (a) raw deg/s: held-out MSE / var 0.68 after 150 epochs (training loss 4.4e4 -> 31, all
  finite: it crawls rather than diverges); normalised: 0.0015; raw rad/s control: 0.0005.
* (b) noise std 1 N m: the deterministic ensemble's 90 % interval covers 27 % of held-out
  outcomes (NLL 44, std / RMSE 0.21), the Gaussian one's 89 % (NLL -2.7, 1.01). Yet the real
  return is *not* worse with the deterministic model (-346 against -377, same starts and
  noise): MPC replans every step, and the Gaussian model's sampled open-loop rollouts are
  pessimistic (optimism -28 against -1).
* (c) slice reward model: held-out reward RMSE 0.69 (1.21 near the goal), return -421;
  joint reward head: 0.37 (0.42), return -347; known reward -337.
* (d) mean return by planned episode, train once then only plan: -893 -932 -882 -937 -839
  (one-step error on visited states 0.12 -> 0.15, optimism +20 -> +23); PETS: -893 -522
  -300 -218 -50 (0.12 -> 0.04, +20 -> 0).

The table's first row, planning too far ahead with a weak model, is ``horizon_gap.py``'s
subject and is not repeated here; the uncertainty penalty (another mitigation the lesson
lists) is ``uncertainty_penalty.py``.

Every model is trained for several seeds at once (``vmap`` of
:func:`jaxmbrl.models.training.train`), every episode is the library's MPC episode
(:mod:`jaxmbrl.mpc`, one ``lax.scan``) and the seeds are a ``vmap`` axis.

  .venv/bin/python examples/common_mistakes.py --quick --out runs/common_mistakes
  .venv/bin/python examples/common_mistakes.py --rows a,d

writes ``common_mistakes.json`` (settings, versions, per-row results, timings) and
``common_mistakes.png`` (one panel per row) to ``--out`` and prints the table
``mistake | symptom (measured) | fix (measured)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxmbrl  # before gymnax, whose import starts JAX's backend (see jaxmbrl.cpu_dot)

# isort: split
from gymnax.environments.classic_control.pendulum import Pendulum

from jaxmbrl import experiments, mpc, reporting
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.envs import flatten, gymnax_adapter, make, random_episodes
from jaxmbrl.envs.pendulum import HangingPendulum, uniform_transitions
from jaxmbrl.envs.reward_fns import known_functions
from jaxmbrl.models import ModelSpec, ensemble, training
from jaxmbrl.planners.registry import PlannerSpec, build

ENV_NAME = "Pendulum-v1"
ROWS = ("a", "b", "c", "d")
DEG_PER_RAD = 180.0 / np.pi
Z90 = 1.6448536  # the central 90 % interval of a Gaussian is mean +- Z90 * std


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every size of the experiment (hashable).

    Attributes:
      num_seeds: ``S``, seeds run side by side (models and episodes).
      data_episodes, data_steps: random-action training episodes (rows a-c).
      heldout_episodes: random-action held-out episodes (rows a-c).
      hidden_sizes, ensemble_size, model_elites: the ensembles of rows a-c.
      max_epochs: training epochs (rows a-c; patience off, so every arm trains as long).
      num_steps: ``T``, real steps of a planned episode (rows b, c).
      horizon, num_samples, num_iterations, num_particles: MPPI and TS1 (rows b, c).
      noise_std: row b's disturbance torque std (N m).
      reward_slice_cos_max: row c's narrow slice: transitions with ``cos(theta) <`` this.
      pets_episodes, pets_episode_length, pets_horizon, pets_samples, pets_hidden,
      pets_max_epochs: row d's PETS configuration.
    """

    num_seeds: int
    data_episodes: int
    data_steps: int
    heldout_episodes: int
    hidden_sizes: tuple[int, ...]
    ensemble_size: int
    model_elites: int
    max_epochs: int
    num_steps: int
    horizon: int
    num_samples: int
    num_iterations: int
    num_particles: int
    noise_std: float
    reward_slice_cos_max: float
    pets_episodes: int
    pets_episode_length: int
    pets_horizon: int
    pets_samples: int
    pets_hidden: tuple[int, ...]
    pets_max_epochs: int


QUICK = Settings(
    num_seeds=2,
    data_episodes=4,
    data_steps=100,
    heldout_episodes=2,
    hidden_sizes=(32, 32),
    ensemble_size=5,
    model_elites=5,
    max_epochs=30,
    num_steps=40,
    horizon=10,
    num_samples=30,
    num_iterations=2,
    num_particles=5,
    noise_std=1.0,
    reward_slice_cos_max=0.0,
    pets_episodes=2,
    pets_episode_length=50,
    pets_horizon=10,
    pets_samples=30,
    pets_hidden=(32, 32),
    pets_max_epochs=30,
)
FULL = Settings(
    num_seeds=5,
    data_episodes=8,
    data_steps=200,
    heldout_episodes=4,
    hidden_sizes=(64, 64),
    ensemble_size=5,
    model_elites=5,
    max_epochs=150,
    num_steps=200,
    horizon=25,
    num_samples=100,
    num_iterations=3,
    num_particles=5,
    noise_std=1.0,
    reward_slice_cos_max=0.0,
    pets_episodes=5,
    pets_episode_length=200,
    pets_horizon=25,
    pets_samples=100,
    pets_hidden=(64, 64),
    pets_max_epochs=500,
)


# --- environments -------------------------------------------------------------------------------


class NoisyPendulum(Pendulum):
    """Pendulum-v1 with a random disturbance torque ``noise_std * N(0, 1)`` every step.

    The disturbance joins the (clipped) control torque in the same semi-implicit Euler step
    as gymnax's dynamics; the reward is gymnax's (it depends on the state before the step and
    the control). ``start_width=None`` keeps gymnax's reset; a number starts near hanging
    down, as :class:`HangingPendulum`.
    """

    def __init__(self, noise_std: float, start_width: float | None = None):
        super().__init__()
        self.noise_std = noise_std
        self.start_width = start_width

    def step_env(self, key, state, action, params):
        _, new, reward, done, info = super().step_env(key, state, action, params)
        push = self.noise_std * jax.random.normal(key, (), jnp.float32)
        extra_speed = 3.0 / (params.m * params.l**2) * push * params.dt
        speed = jnp.clip(new.theta_dot + extra_speed, -params.max_speed, params.max_speed)
        theta = state.theta + speed * params.dt
        new = new.replace(theta=theta, theta_dot=speed)
        return self.get_obs(new), new, reward, done, info

    def reset_env(self, key, params):
        if self.start_width is None:
            return super().reset_env(key, params)
        return HangingPendulum(self.start_width).reset_env(key, params)


class Data(NamedTuple):
    """Transitions ``obs [D, 3]``, ``action [D, 1]``, ``next_obs [D, 3]``, ``reward [D]``."""

    obs: jax.Array
    action: jax.Array
    next_obs: jax.Array
    reward: jax.Array


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def collect(env, env_params, key, episodes: int, steps: int) -> Data:
    """``episodes`` random-action episodes of ``steps`` steps, flattened."""
    d = flatten(random_episodes(env, env_params, key, episodes, steps))
    return Data(d.obs, d.action, d.next_obs, d.reward)


def summary_stats(values) -> dict:
    """``{"mean", "min", "max"}`` of per-seed values, as floats."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}


def model_config(s: Settings, **kw) -> ensemble.EnsembleConfig:
    return ensemble.EnsembleConfig(
        obs_dim=3,
        action_dim=1,
        num_members=s.ensemble_size,
        num_elites=s.model_elites,
        hidden_sizes=s.hidden_sizes,
        **kw,
    )


def train_config(s: Settings, **kw) -> training.TrainConfig:
    return training.TrainConfig(
        learning_rate=1e-3, max_epochs=s.max_epochs, patience=s.max_epochs, batch_size=128, **kw
    )


# --- planned episodes with a learned model --------------------------------------------------------


class Trajectory(NamedTuple):
    """Real episodes ``[S, T, ...]``: ``obs`` each action was planned from, ``reward`` the
    real rewards, ``imagined`` the imagined ``H``-step return of each executed plan."""

    obs: jax.Array
    reward: jax.Array
    imagined: jax.Array


def make_episodes(
    s: Settings,
    env,
    env_params,
    grouped: Callable,
    reward_fn,
    rollout: jaxmbrl.RolloutConfig,
):
    """``episodes(model_params [S], keys [S]) -> Trajectory [S, T]``, jitted.

    Each seed runs one MPC episode of the library (:func:`jaxmbrl.mpc.run_episode`; seeds
    under ``vmap``) in the gymnax environment ``env``: MPPI (``s.horizon``, ``s.num_samples``,
    ``s.num_iterations``) plans every real step through the grouped model
    ``grouped(model_params)`` (:data:`jaxmbrl.rollouts.GroupedModel`) with ``rollout``;
    ``reward_fn`` is the known reward or ``None`` (the model's reward output). Afterwards the
    plan executed at every step (``EpisodeRecord.solutions``) is scored again with the same
    objective (``imagined``).
    """
    real_env = gymnax_adapter.functions(env, env_params, ENV_NAME)
    action = gymnax_adapter.spec(ENV_NAME, env, env_params).action
    options = {"num_samples": s.num_samples, "num_iterations": s.num_iterations}
    planner, _ = build(PlannerSpec("mppi", horizon=s.horizon, options=options), action)

    def episode(model_params, key) -> Trajectory:
        model = grouped(model_params)

        def objective(obs):  # a learned model sees only the observation
            return jaxmbrl.make_particle_objective(
                rollout, model, obs, num_members=s.model_elites, reward_fn=reward_fn
            )

        record = mpc.run_episode(
            real_env,
            planner,
            key,
            num_steps=s.num_steps,
            make_objective=lambda env_state, obs: objective(obs),
        )
        score_keys = jax.random.split(jax.random.fold_in(key, 1), s.num_steps)
        imagined = mpc.rescore(lambda env_state, obs: objective(obs), record, score_keys)
        return Trajectory(record.observations, record.rewards, imagined)

    return jax.jit(jax.vmap(episode))


def optimism(rewards, imagined, horizon: int) -> np.ndarray:
    """``[S]``: mean over the episode of the imagined ``H``-step return minus the real one
    (``rewards``, ``imagined``: ``[S, T]``)."""
    r = np.asarray(rewards)
    t = r.shape[1]
    real = np.stack([r[:, i : i + horizon].sum(-1) for i in range(t - horizon + 1)], axis=1)
    return (np.asarray(imagined)[:, : t - horizon + 1] - real).mean(axis=1)


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t0


# --- row (a): normalisation ----------------------------------------------------------------------


def heldout_relative_mse(mc, state, data: Data) -> jax.Array:
    """Per-target held-out MSE of the elites' mean prediction over the target's variance
    (1.0 = no better than predicting the held-out mean), real units: ``[Y]``."""
    mean, _ = ensemble.predict(mc, state, data.obs, data.action)
    mean = mean[state.elite_idx].mean(axis=0)
    y = data.next_obs - data.obs
    if mc.learn_reward:
        y = jnp.concatenate([y, data.reward[:, None]], axis=-1)
    return jnp.mean(jnp.square(mean - y), axis=0) / jnp.var(y, axis=0)


@functools.partial(jax.jit, static_argnames=("s", "normalise"))
def train_seeds(s: Settings, normalise: bool, keys: jax.Array, d: Data):
    """Row (a)'s ensembles, one per key (``vmap``), with or without the normaliser."""
    mc = model_config(s)

    def one(k):
        k_init, k_fit = jax.random.split(k)
        if normalise:
            state, tc = None, train_config(s)
        else:  # an identity normaliser, kept: the network sees raw units
            state, tc = ensemble.init(mc, k_init), train_config(s, refit_normalizer=False)
        return training.train(mc, tc, k_fit, state, d.obs, d.action, d.next_obs)

    return jax.vmap(one)(keys)


def row_a(s: Settings, key: jax.Array) -> dict:
    env, env_params = make(ENV_NAME)
    k_data, k_held, k_train = jax.random.split(key, 3)
    data = collect(env, env_params, k_data, s.data_episodes, s.data_steps)
    held = collect(env, env_params, k_held, s.heldout_episodes, s.data_steps)
    to_deg = lambda d: d._replace(
        obs=d.obs.at[:, 2].multiply(DEG_PER_RAD), next_obs=d.next_obs.at[:, 2].multiply(DEG_PER_RAD)
    )
    mc = model_config(s)
    keys = jax.random.split(k_train, s.num_seeds)
    arms = {
        "raw_deg": (to_deg(data), to_deg(held), False),
        "normalised_deg": (to_deg(data), to_deg(held), True),
        "raw_rad": (data, held, False),
    }
    out = {"units": "theta_dot in deg/s (x 57.3); raw_rad is the control in rad/s"}
    for name, (d, h, normalise) in arms.items():
        (states, log), wall = _timed(train_seeds, s, normalise, keys, d)
        rel = jax.vmap(lambda st, h=h: heldout_relative_mse(mc, st, h))(states)  # [S, 3]
        loss = np.asarray(log.train_loss)  # [S, T]
        out[name] = {
            "heldout_rel_mse": summary_stats(np.asarray(rel).mean(axis=1)),
            "heldout_rel_mse_per_dim": np.asarray(rel).mean(axis=0).tolist(),
            "train_loss_first": summary_stats(loss[:, 0]),
            "train_loss_last": summary_stats(loss[:, -1]),
            "train_loss_curve": loss.mean(axis=0).tolist(),
            "finite": bool(np.all(np.isfinite(loss))),
            "train_s": wall,
        }
    out["symptom"] = (
        f"held-out MSE / var = {out['raw_deg']['heldout_rel_mse']['mean']:.3g}; train loss "
        f"{out['raw_deg']['train_loss_first']['mean']:.3g} -> "
        f"{out['raw_deg']['train_loss_last']['mean']:.3g} in {s.max_epochs} epochs "
        f"({'finite: it crawls' if out['raw_deg']['finite'] else 'it diverges (non-finite)'})"
    )
    out["fix"] = (
        f"held-out MSE / var = {out['normalised_deg']['heldout_rel_mse']['mean']:.3g} "
        f"(raw rad/s control: {out['raw_rad']['heldout_rel_mse']['mean']:.3g})"
    )
    return out


# --- row (b): deterministic model, stochastic environment ----------------------------------------


def calibration(mc, state, data: Data) -> dict:
    """The elites' predictive distribution of ``obs' - obs`` on held-out ``data``.

    Mean: the elites' average; variance: the spread of the elites' means plus, for a
    Gaussian head, their average predicted variance (the mixture's variance). Returns
    per-seed scalars (averaged over the 3 targets): coverage of the central 90 % interval,
    Gaussian NLL per target (nats), and the ratio of the predicted std to the RMS error.
    """
    mean, var = ensemble.predict(mc, state, data.obs, data.action)
    mean, var = mean[state.elite_idx], var[state.elite_idx]
    mu = mean.mean(axis=0)
    total_var = jnp.var(mean, axis=0) + var.mean(axis=0)  # [D, 3]
    total_var = jnp.maximum(total_var, 1e-12)
    err = data.next_obs - data.obs - mu
    z = err / jnp.sqrt(total_var)
    nll = 0.5 * (jnp.log(2 * jnp.pi * total_var) + jnp.square(z))
    ratio = jnp.sqrt(jnp.mean(total_var, axis=0)) / jnp.sqrt(jnp.mean(jnp.square(err), axis=0))
    return {
        "coverage90": jnp.mean(jnp.abs(z) < Z90),
        "nll": jnp.mean(nll),
        "std_over_rmse": jnp.mean(ratio),
        "std_over_rmse_theta_dot": ratio[2],
    }


def row_b(s: Settings, key: jax.Array) -> dict:
    env_params = make(ENV_NAME)[1]
    data_env = NoisyPendulum(s.noise_std)
    eval_env = NoisyPendulum(s.noise_std, start_width=0.3)
    reward_fn, _ = known_functions(ENV_NAME, env_params)
    k_held, k_train, k_ep = jax.random.split(key, 3)
    held = collect(data_env, env_params, k_held, s.heldout_episodes, s.data_steps)
    rollout = jaxmbrl.RolloutConfig(num_particles=s.num_particles, propagation="ts1")
    seed_keys = jax.random.split(k_train, s.num_seeds)
    ep_keys = jax.random.split(k_ep, s.num_seeds)
    out = {"noise_std": s.noise_std, "rollout": "ts1", "num_particles": s.num_particles}
    for name, deterministic in (("deterministic", True), ("gaussian", False)):
        mc = model_config(s, deterministic=deterministic)

        def one(k, mc=mc):
            k_d, k_t = jax.random.split(k)
            d = collect(data_env, env_params, k_d, s.data_episodes, s.data_steps)
            return training.train(mc, train_config(s), k_t, None, d.obs, d.action, d.next_obs)

        (states, _), train_s = _timed(jax.jit(jax.vmap(one)), seed_keys)
        cal = jax.vmap(lambda st, mc=mc: calibration(mc, st, held))(states)
        grouped = lambda st, mc=mc: functools.partial(ensemble.predict_grouped, mc, st)
        episodes = make_episodes(s, eval_env, env_params, grouped, reward_fn, rollout)
        traj, run_s = _timed(episodes, states, ep_keys)
        out[name] = {
            **{k: summary_stats(v) for k, v in cal.items()},
            "return": summary_stats(np.asarray(traj.reward).sum(axis=1)),
            "optimism": summary_stats(optimism(traj.reward, traj.imagined, s.horizon)),
            "train_s": train_s,
            "episodes_s": run_s,
        }
    d, g = out["deterministic"], out["gaussian"]
    out["symptom"] = (
        f"90% interval covers {d['coverage90']['mean']:.0%}; NLL {d['nll']['mean']:.3g}; "
        f"std/RMSE {d['std_over_rmse']['mean']:.2f}; return {d['return']['mean']:.0f}, "
        f"optimism {d['optimism']['mean']:+.1f}"
    )
    out["fix"] = (
        f"covers {g['coverage90']['mean']:.0%}; NLL {g['nll']['mean']:.3g}; "
        f"std/RMSE {g['std_over_rmse']['mean']:.2f}; return {g['return']['mean']:.0f}, "
        f"optimism {g['optimism']['mean']:+.1f}"
    )
    return out


# --- row (c): the reward model --------------------------------------------------------------------


def reward_errors(mc, state, data: Data, near_goal: jax.Array) -> dict:
    """RMS error of the elites' mean reward on held-out ``data``, overall and near the goal."""
    mean, _ = ensemble.predict(mc, state, data.obs, data.action)
    r = mean[state.elite_idx, :, mc.obs_dim].mean(axis=0)
    sq = jnp.square(r - data.reward)
    w = near_goal.astype(jnp.float32)
    return {
        "reward_rmse": jnp.sqrt(jnp.mean(sq)),
        "reward_rmse_near_goal": jnp.sqrt(jnp.sum(sq * w) / jnp.maximum(jnp.sum(w), 1.0)),
    }


def row_c(s: Settings, key: jax.Array) -> dict:
    env, env_params = make(ENV_NAME)
    eval_env = HangingPendulum(0.3)
    k_held, k_train, k_ep = jax.random.split(key, 3)
    # Held out: states uniform over the phase space, so the region near the goal is checked too.
    held = Data(*uniform_transitions(env_params, k_held, s.heldout_episodes * s.data_steps)[:4])
    near_goal = held.obs[:, 0] > jnp.cos(0.5)  # within 0.5 rad of upright
    mc = model_config(s, learn_reward=True)
    tc = train_config(s)

    def one(k):
        k_d, k_joint, k_slice = jax.random.split(k, 3)
        d = collect(env, env_params, k_d, s.data_episodes, s.data_steps)
        everything = jnp.ones(d.reward.shape, bool)
        narrow = d.obs[:, 0] < s.reward_slice_cos_max
        train = lambda k, m: training.train(mc, tc, k, None, *d, mask=m)
        joint, _ = train(k_joint, everything)
        slice_model, _ = train(k_slice, narrow)
        return joint, slice_model, jnp.mean(narrow.astype(jnp.float32))

    (joint, slice_model, slice_share), train_s = _timed(
        jax.jit(jax.vmap(one)), jax.random.split(k_train, s.num_seeds)
    )
    ep_keys = jax.random.split(k_ep, s.num_seeds)
    rollout = jaxmbrl.RolloutConfig(num_particles=s.num_particles, propagation="ts1")
    reward_fn, _ = known_functions(ENV_NAME, env_params)

    def own_model(states):  # the joint model, its own reward head
        joint = states[0]
        return functools.partial(ensemble.predict_grouped, mc, joint)

    def slice_reward(states):  # the joint model's dynamics with the slice model's reward
        joint, slice_model = states

        def grouped(obs, action):
            mean, var = ensemble.predict_grouped(mc, joint, obs, action)
            r_mean, r_var = ensemble.predict_grouped(mc, slice_model, obs, action)
            return mean.at[..., 3].set(r_mean[..., 3]), var.at[..., 3].set(r_var[..., 3])

        return grouped

    arms = {
        "slice_reward": (slice_reward, None),
        "joint_reward": (own_model, None),
        "known_reward": (own_model, reward_fn),
    }
    out = {"slice": f"cos(theta) < {s.reward_slice_cos_max}", "rollout": "ts1"}
    out["slice_share_of_data"] = float(np.mean(np.asarray(slice_share)))
    out["train_s"] = train_s
    for name, (grouped, rfn) in arms.items():
        episodes = make_episodes(s, eval_env, env_params, grouped, rfn, rollout)
        traj, run_s = _timed(episodes, (joint, slice_model), ep_keys)
        obs = np.asarray(traj.obs)
        out[name] = {
            "return": summary_stats(np.asarray(traj.reward).sum(axis=1)),
            "share_steps_near_goal": summary_stats((obs[..., 0] > np.cos(0.5)).mean(axis=1)),
            "optimism": summary_stats(optimism(traj.reward, traj.imagined, s.horizon)),
            "episodes_s": run_s,
        }
    for name, states in (("slice_reward", slice_model), ("joint_reward", joint)):
        err = jax.vmap(lambda st: reward_errors(mc, st, held, near_goal))(states)
        out[name].update({k: summary_stats(v) for k, v in err.items()})
    # the reward each model predicts along theta (hanging at rest, no torque), for the plot
    theta = jnp.linspace(-jnp.pi, jnp.pi, 121)
    grid = jnp.stack([jnp.cos(theta), jnp.sin(theta), jnp.zeros_like(theta)], axis=-1)
    zero = jnp.zeros((theta.shape[0], 1))
    curve = lambda st: ensemble.predict(mc, st, grid, zero)[0][st.elite_idx, :, 3].mean(0)
    first = lambda tree: jax.tree.map(lambda x: x[0], tree)
    out["_plot"] = {
        "theta": np.asarray(theta).tolist(),
        "true": np.asarray(-jnp.square(theta)).tolist(),
        "slice": np.asarray(curve(first(slice_model))).tolist(),
        "joint": np.asarray(curve(first(joint))).tolist(),
    }
    sl, jo, kn = out["slice_reward"], out["joint_reward"], out["known_reward"]
    out["symptom"] = (
        f"held-out reward RMSE {sl['reward_rmse']['mean']:.2f} (near goal "
        f"{sl['reward_rmse_near_goal']['mean']:.2f}); return {sl['return']['mean']:.0f}, "
        f"{sl['share_steps_near_goal']['mean']:.0%} of steps near goal"
    )
    near = f"{jo['share_steps_near_goal']['mean']:.0%}"
    out["fix"] = (
        f"RMSE {jo['reward_rmse']['mean']:.2f} "
        f"(near goal {jo['reward_rmse_near_goal']['mean']:.2f}); "
        f"return {jo['return']['mean']:.0f}, {near} near goal "
        f"(known reward: {kn['return']['mean']:.0f})"
    )
    return out


# --- row (d): real-data refresh ------------------------------------------------------------------


def pets_config(s: Settings) -> jaxmbrl.PETSConfig:
    """PETS as the lesson measured it (MPPI, 3 iterations; 5 members, 3 elites; expectation
    propagation) at row d's sizes."""
    return jaxmbrl.PETSConfig(
        env_name=ENV_NAME,
        num_episodes=s.pets_episodes,
        num_random_episodes=1,
        episode_length=s.pets_episode_length,
        planner=PlannerSpec(
            "mppi",
            horizon=s.pets_horizon,
            options={"num_samples": s.pets_samples, "num_iterations": 3},
        ),
        model=ModelSpec(num_members=5, num_elites=3, hidden_sizes=s.pets_hidden),
        train=training.TrainConfig(max_epochs=s.pets_max_epochs, patience=30, learning_rate=1e-3),
    )


def row_d(s: Settings, key: jax.Array) -> dict:
    config = pets_config(s)
    agent = pets_lib.make_pets(config)
    model_config = pets_lib.pets_setup(config).model_config
    init = jax.jit(jax.vmap(agent.init))
    random_episode = jax.jit(jax.vmap(agent.random_episode))
    train_model = jax.jit(jax.vmap(agent.train_model))
    planned_episode = jax.jit(jax.vmap(agent.planned_episode))

    @jax.jit
    @jax.vmap
    def visited_error(model, record: mpc.EpisodeRecord):
        """The model's one-step error on the episode it just planned: held-out MSE / variance
        of ``obs' - obs`` in real units (comparable across models, whose normalisers differ)."""
        data = Data(record.observations, record.actions, record.next_observations, record.rewards)
        return jnp.mean(heldout_relative_mse(model_config, model, data))

    keys = jax.random.split(key, s.num_seeds)
    state0 = init(keys, jnp.arange(s.num_seeds, dtype=jnp.int32))
    state0, random_record = random_episode(state0)
    t0 = time.perf_counter()
    trained, _ = jax.block_until_ready(train_model(state0))
    first_train_s = time.perf_counter() - t0

    # PETS first; the mistake then replays PETS' keys, so in every episode both arms start
    # from the same state with the same planning keys (a paired comparison).
    arms, episode_keys = {}, []
    for arm in ("pets", "no_refresh"):
        state = trained
        returns, imagined, errors, buffer_rows, gaps = [], [], [], [], []
        t0 = time.perf_counter()
        for episode in range(config.num_episodes):
            if arm == "pets":
                if episode > 0:  # PETS: retrain on everything collected so far
                    state, _ = train_model(state)
                episode_keys.append(state.key)
            else:  # the mistake: the model trained once on random data, PETS' keys
                state = trained.replace(key=episode_keys[episode])
            after, record = planned_episode(state)
            errors.append(np.asarray(visited_error(state.model, record)))
            returns.append(np.asarray(record.episode_return))
            imagined.append(np.asarray(record.expected_returns[:, 0]))
            gaps.append(optimism(record.rewards, record.expected_returns, config.planner.horizon))
            if arm == "pets":
                state = after  # keeps the episode in its buffer
            buffer_rows.append(np.asarray(state.buffer.size))
        jax.block_until_ready(state)
        returns, imagined, errors = np.stack(returns, 1), np.stack(imagined, 1), np.stack(errors, 1)
        gaps = np.stack(gaps, 1)
        later = returns[:, 1:] if returns.shape[1] > 1 else returns
        arms[arm] = {
            "episode_returns": returns.tolist(),  # [S, episodes]
            "mean_return_per_episode": returns.mean(0).tolist(),
            "return_after_first_episode": summary_stats(later.mean(axis=1)),
            "imagined_first_return": imagined.mean(0).tolist(),
            "visited_model_error": errors.mean(0).tolist(),
            "optimism_per_episode": gaps.mean(0).tolist(),
            "buffer_rows_after_episode": np.stack(buffer_rows, 1).mean(0).tolist(),
            "wall_s": time.perf_counter() - t0,
        }
    no, fix = arms["no_refresh"], arms["pets"]

    def describe(arm):
        per_episode = " ".join(f"{v:.0f}" for v in arm["mean_return_per_episode"])
        err, gap = arm["visited_model_error"], arm["optimism_per_episode"]
        return (
            f"returns by episode {per_episode}; one-step error on the visited states "
            f"{err[0]:.3g} -> {err[-1]:.3g}; optimism {gap[0]:+.0f} -> {gap[-1]:+.0f}"
        )

    out = {
        "config": experiments.config_record(config),
        "random_episode_return": summary_stats(np.asarray(random_record.episode_return)),
        "first_train_s": first_train_s,
        "pairing": "both arms use the same start state and planning keys in every episode",
        **arms,
        "symptom": describe(no),
        "fix": describe(fix),
    }
    return out


# --- main -----------------------------------------------------------------------------------------

MISTAKES = {
    "a": "no normalisation (theta_dot in deg/s)",
    "b": "deterministic model, stochastic env",
    "c": "reward model from a narrow slice, unchecked",
    "d": "no real-data refresh after random data",
}
RUNNERS = {"a": row_a, "b": row_b, "c": row_c, "d": row_d}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test, < 1 min)")
    parser.add_argument("--out", default="runs/common_mistakes", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", default=",".join(ROWS), help="rows to run, e.g. a,d")
    parser.add_argument("--noise", type=float, default=None, help="row b's disturbance std")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for r in rows:
        if r not in ROWS:
            parser.error(f"unknown row {r!r}; choose from {', '.join(ROWS)}")
    s = QUICK if args.quick else FULL
    if args.noise is not None:
        s = dataclasses.replace(s, noise_std=args.noise)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    key = jax.random.key(args.seed)
    results, plot_data = {}, {}
    for r in rows:
        t0 = time.perf_counter()
        res = RUNNERS[r](s, jax.random.fold_in(key, ROWS.index(r)))
        res["wall_s"] = time.perf_counter() - t0
        plot_data[r] = _pop_plot(res)
        results[r] = res
        print(f"row {r} done in {res['wall_s']:.1f} s", flush=True)

    summary = {
        "env": ENV_NAME,
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "rows": rows,
        "settings": json.loads(json.dumps(dataclasses.asdict(s))),
        "mistakes": {r: MISTAKES[r] for r in rows},
        "not_covered_here": {
            "planning too far ahead with a weak model": "see horizon_gap.py",
            "uncertainty penalty": "see uncertainty_penalty.py",
        },
        "versions": reporting.machine_record(),
        "results": results,
        "wall_time_s": time.perf_counter() - t_start,
    }
    reporting.write_json(out / "common_mistakes.json", summary)
    _plot(results, plot_data, out / "common_mistakes.png")
    _print_table(results)
    print(f"\nwrote {out / 'common_mistakes.json'} and {out / 'common_mistakes.png'}")
    print(f"total {summary['wall_time_s']:.1f} s")
    return summary


def _pop_plot(res: dict) -> dict:
    """Take the plotting arrays out of a row's results (nested one level at most)."""
    found = {"row": res.pop("_plot", None)}
    for k, v in res.items():
        if isinstance(v, dict) and "_plot" in v:
            found[k] = v.pop("_plot")
    return found


def _print_table(results: dict) -> None:
    rows = [("mistake", "symptom (measured)", "fix (measured)")]
    rows += [(f"({r}) {MISTAKES[r]}", res["symptom"], res["fix"]) for r, res in results.items()]
    w0, w1 = (max(len(row[i]) for row in rows) for i in (0, 1))
    lines = [f"{m:<{w0}} | {sym:<{w1}} | {fix}" for m, sym, fix in rows]
    print("\n" + lines[0] + "\n" + "-" * max(len(line) for line in lines))
    print("\n".join(lines[1:]))
    print(
        "(planning too far ahead with a weak model: see horizon_gap.py; the uncertainty "
        "penalty: uncertainty_penalty.py)"
    )


def _plot(results: dict, plot_data: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    for ax, (r, res) in zip(axes[0], results.items(), strict=True):
        if r == "a":
            for name, style in (("raw_deg", "-"), ("normalised_deg", "-"), ("raw_rad", ":")):
                ax.plot(res[name]["train_loss_curve"], style, label=name)
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_xlabel("epoch")
            ax.set_ylabel("training loss (NLL, model's own units; symlog)")
            ax.set_title("(a) normalisation: training loss", fontsize=10)
        elif r == "b":
            names = ["deterministic", "gaussian"]
            x = np.arange(3)
            for i, name in enumerate(names):
                vals = [
                    res[name]["coverage90"]["mean"],
                    min(res[name]["std_over_rmse"]["mean"], 2.0),
                    res[name]["return"]["mean"] / -1000.0,
                ]
                ax.bar(x + 0.38 * i, vals, width=0.38, label=name)
            ax.axhline(0.9, color="k", ls="--", lw=0.7)
            ax.set_xticks(x + 0.19, ["90% coverage", "pred. std / RMSE", "-return / 1000"])
            ax.set_title(f"(b) noise std {res['noise_std']} N m: calibration, return", fontsize=10)
        elif r == "c":
            pd = plot_data[r]["row"]
            ax.plot(pd["theta"], pd["true"], "k-", label="true (at rest, no torque)")
            ax.plot(pd["theta"], pd["slice"], label="slice-trained reward model")
            ax.plot(pd["theta"], pd["joint"], label="jointly trained reward head")
            ax.axvspan(-np.pi / 2, np.pi / 2, color="grey", alpha=0.15, label="not in the slice")
            ax.set_xlabel("theta (0 = upright goal)")
            ax.set_ylabel("predicted reward")
            ax.set_title("(c) reward models (seed 0)", fontsize=10)
        elif r == "d":
            for name, label in (("no_refresh", "train once, then only plan"), ("pets", "PETS")):
                rets = np.asarray(res[name]["episode_returns"])
                eps = np.arange(1, rets.shape[1] + 1)
                ax.plot(eps, rets.mean(0), marker="o", label=label)
                ax.fill_between(eps, rets.min(0), rets.max(0), alpha=0.15)
            ax.set_xlabel("planned episode")
            ax.set_ylabel("real return (mean, min-max over seeds)")
            ax.set_title("(d) real-data refresh", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
