"""Embedding the planner in your own pipeline: 64 Pendulum-v1 environments, one ``jax.jit``.

jaxmbrl's contract is that a planner -- and the library's one MPC step built on it -- is a
set of pure functions that run under the *caller's* transformations. This example is written
as user code: it holds ``B = 64`` Pendulum-v1 environments and runs its own ``lax.scan`` over
time. Every time step it calls the library's MPC step, :func:`jaxmbrl.mpc.mpc_step` (plan,
act with the first action, shift the plan: the warm start), under ``jax.vmap`` over the
environments -- 64 episode carries (observation, environment state, plan state), 64 keys, 64
objectives that close over traced per-environment values (the environment state, the
observation) -- and keeps the 64 carries in its own scan carry. The whole episode is one
compiled call.

It does this twice:

(a) with the true dynamics as the model (:func:`jaxmbrl.mpc.oracle`: each environment's own
    state rolled forward), and
(b) with a learned ensemble: random Pendulum transitions collected with gymnax's
    ``env.step_env`` under ``vmap``, ``jaxmbrl.models.training.train``, then
    ``make_particle_objective`` with ``functools.partial(ensemble.predict_grouped, config,
    state)`` and the known Pendulum reward (``Environment.reward_fn``).

For each it prints and records the compile time, the wall time of the compiled scan, the
environment steps and imagined transitions per second, the mean / min / max return over the
environments, the number of times the jitted function was traced (a Python side-effect
counter inside it; it is called twice, with different keys, and must be traced once), and a
check that a plain Python loop over a few environments, with the same keys and the
unbatched MPC step, picks the same first actions as the vmapped pipeline.

  .venv/bin/python examples/embed_planner.py --quick --out runs/embed_planner

writes ``embed_planner.json`` and ``embed_planner.png`` to ``--out``. Measured on the
project's shared 2-core CPU (jax 0.10.2): ``--quick`` (64 envs x 30 steps, CEM H 10, 40 x 2)
takes about 30 s end to end; the full mode (64 x 200 steps, CEM H 25, 100 x 3, TS1 with 2
particles through a 2 x 64 ensemble) about 3.5 min, of which 2 x 91 s are the two calls of
the learned-model scan (2.1M imagined transitions/s) and 2 x 1.7 s the oracle's (57M/s).
Mean returns over the 64 environments: -165 with the true dynamics, -160 with the learned
ensemble (known reward). The vmapped and the looped actions agreed to 2e-7.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import pathlib
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxmbrl
from jaxmbrl import mpc, reporting
from jaxmbrl.envs import Environment, load, make
from jaxmbrl.models import ensemble, training

ENV_NAME = "Pendulum-v1"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every size of the example (hashable, so it can be static under ``jit``).

    Attributes:
      num_envs: ``B``, environments run side by side.
      num_steps: ``T``, real steps per environment (Pendulum's episode is 200).
      horizon, num_samples, num_elites, num_iterations: CEM's ``H``, ``N``, ``K`` and
        iterations per planning call.
      num_transitions: random transitions the ensemble is trained on.
      hidden_sizes, ensemble_size, model_elites: the ensemble (``E`` members, ``K`` elites).
      num_particles: ``P``, TS1 particles per candidate (a multiple of ``model_elites``).
      max_epochs: training epochs (early stopping may end sooner).
      check_envs, check_steps: the Python-loop check runs this many environments for this
        many steps.
    """

    num_envs: int
    num_steps: int
    horizon: int
    num_samples: int
    num_elites: int
    num_iterations: int
    num_transitions: int
    hidden_sizes: tuple[int, ...]
    ensemble_size: int
    model_elites: int
    num_particles: int
    max_epochs: int
    check_envs: int = 3
    check_steps: int = 3


QUICK = Settings(
    num_envs=64,
    num_steps=30,
    horizon=10,
    num_samples=40,
    num_elites=5,
    num_iterations=2,
    num_transitions=2000,
    hidden_sizes=(32, 32),
    ensemble_size=3,
    model_elites=2,
    num_particles=2,
    max_epochs=60,
)
FULL = Settings(
    num_envs=64,
    num_steps=200,
    horizon=25,
    num_samples=100,
    num_elites=10,
    num_iterations=3,
    num_transitions=4000,
    hidden_sizes=(64, 64),
    ensemble_size=4,
    model_elites=2,
    num_particles=2,
    max_epochs=300,
)


# --- the user's side: data, model -------------------------------------------------------------


class Transitions(NamedTuple):
    """Random transitions: ``obs [T, O]``, ``action [T, A]``, ``next_obs [T, O]``."""

    obs: jax.Array
    action: jax.Array
    next_obs: jax.Array


def collect_random_transitions(env, env_params, key: jax.Array, num: int) -> Transitions:
    """``num`` one-step transitions from uniform states and actions, ``step_env`` under vmap.

    States cover the whole phase space (``theta`` in ``[-pi, pi]``, ``theta_dot`` in
    ``[-max_speed, max_speed]``), so the model has seen the swing-up states it will plan
    through.
    """
    k_theta, k_dot, k_action, k_step = jax.random.split(key, 4)
    theta = jax.random.uniform(k_theta, (num,), jnp.float32, -jnp.pi, jnp.pi)
    speed = env_params.max_speed
    theta_dot = jax.random.uniform(k_dot, (num,), jnp.float32, -speed, speed)
    torque = env_params.max_torque
    action = jax.random.uniform(k_action, (num, 1), jnp.float32, -torque, torque)
    _, state0 = env.reset_env(jax.random.key(0), env_params)  # a template EnvState
    states = jax.vmap(lambda th, td: state0.replace(theta=th, theta_dot=td))(theta, theta_dot)
    obs = jax.vmap(env.get_obs)(states)
    keys = jax.random.split(k_step, num)
    next_obs, *_ = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(keys, states, action, env_params)
    return Transitions(obs=obs, action=action, next_obs=next_obs)


def train_ensemble(settings: Settings, key: jax.Array, data: Transitions):
    """A Gaussian ensemble trained on ``data``: ``(config, state, log)``."""
    config = ensemble.EnsembleConfig(
        obs_dim=data.obs.shape[-1],
        action_dim=data.action.shape[-1],
        num_members=settings.ensemble_size,
        num_elites=settings.model_elites,
        hidden_sizes=settings.hidden_sizes,
    )
    train_config = training.TrainConfig(
        learning_rate=1e-3, max_epochs=settings.max_epochs, patience=30, batch_size=256
    )
    state, log = training.train(
        config, train_config, key, None, data.obs, data.action, data.next_obs
    )
    return config, state, log


# --- objectives: model_params -> (env_state, obs) -> Objective --------------------------------
# The library's MPC step asks for an ObjectiveFactory ``(env_state, obs) -> objective``; it is
# called once per environment inside the vmap, so env_state and obs are that environment's
# traced values. The model's parameters are an argument of the user's jitted function, so the
# factory is built from them inside it.

Objectives = Callable[[object], mpc.ObjectiveFactory]


def oracle_objectives(env: Environment) -> Objectives:
    """The true dynamics as the model (``model_params`` unused: the environment's own)."""

    def objectives(model_params):
        del model_params
        return mpc.oracle(env)

    return objectives


def learned_objectives(
    model_config: ensemble.EnsembleConfig, rollout: jaxmbrl.RolloutConfig, reward_fn
) -> Objectives:
    """TS1 particles through the ensemble: ``model_params`` is the ``EnsembleState``."""

    def objectives(model_state):
        model = functools.partial(ensemble.predict_grouped, model_config, model_state)

        def make_objective(env_state, obs):
            del env_state  # a learned model sees only the observation
            return jaxmbrl.make_particle_objective(
                rollout, model, obs, num_members=model_config.num_elites, reward_fn=reward_fn
            )

        return make_objective

    return objectives


# --- the user's pipeline ------------------------------------------------------------------------


def start(planner: jaxmbrl.Planner, obs: jax.Array, env_state) -> mpc.EpisodeCarry:
    """One environment's episode carry before its first step (unbatched; vmap it)."""
    return mpc.EpisodeCarry(obs, env_state, planner.init(), jnp.array(True), jnp.float32(0.0))


class Trajectory(NamedTuple):
    """What the pipeline returns: ``actions [T, B, A]``, ``rewards [T, B]``,
    ``expected_returns [T, B]`` (the planner's imagined return of each plan)."""

    actions: jax.Array
    rewards: jax.Array
    expected_returns: jax.Array


def make_pipeline(env: Environment, planner, objectives: Objectives, num_steps: int, counter):
    """The user's compiled episode: ``run(model_params, key, env_states, obs) -> Trajectory``.

    Every time step is the library's MPC step (:func:`jaxmbrl.mpc.mpc_step`: plan, act with
    the first action, shift the plan) under ``jax.vmap`` over the ``B`` environments, inside
    the user's own ``lax.scan``; the time step's key is split into one key per environment.
    ``counter`` is a dict; ``counter["traces"]`` goes up by one each time JAX traces ``run``
    (a Python side effect: it runs while tracing, never in compiled calls).
    """

    @jax.jit
    def run(model_params, key, env_states, obs):
        counter["traces"] += 1
        num_envs = obs.shape[0]
        mpc_step = functools.partial(mpc.mpc_step, env, planner, objectives(model_params))
        batched_step = jax.vmap(mpc_step)  # carries [B], keys [B]

        def step(carries, key_t):
            carries, out = batched_step(carries, jax.random.split(key_t, num_envs))
            return carries, Trajectory(out.action, out.reward, out.info.expected_return)

        carries = jax.vmap(functools.partial(start, planner))(obs, env_states)
        _, trajectory = jax.lax.scan(step, carries, jax.random.split(key, num_steps))
        return trajectory

    return run


def loop_actions(
    env, planner, objectives, model_params, key, env_states, obs, *, num_steps, envs, steps
) -> np.ndarray:
    """The reference: a plain Python loop over ``envs`` and ``steps``, one environment at a
    time through the unbatched MPC step.

    Uses the pipeline's keys (the same ``split`` of ``key`` into ``num_steps`` step keys and
    of each step key into one key per environment). Returns ``[steps, len(envs), A]``.
    """
    mpc_step = jax.jit(
        lambda params, carry, k: mpc.mpc_step(env, planner, objectives(params), carry, k)
    )
    time_keys = jax.random.split(key, num_steps)
    num_envs = obs.shape[0]
    out = []
    for i in envs:
        carry = start(planner, obs[i], jax.tree.map(lambda x, i=i: x[i], env_states))
        actions = []
        for t in range(steps):
            key_i = jax.random.split(time_keys[t], num_envs)[i]  # environment i's, step t
            carry, step_out = mpc_step(model_params, carry, key_i)
            actions.append(np.asarray(step_out.action))
        out.append(np.stack(actions))
    return np.stack(out, axis=1)


def measure(name, run, objectives, planner, env, model_params, key, reset, s, counter):
    """Compile ``run``, call it twice, count traces and run the loop check; a result dict.

    Compile time is measured ahead of time (``lower`` then ``compile``); the two calls that
    follow reuse that executable, so both time the compiled scan alone.
    """
    obs, env_states = reset
    args = (model_params, key, env_states, obs)
    t0 = time.perf_counter()
    lowered = run.lower(*args)
    t1 = time.perf_counter()
    lowered.compile()
    t2 = time.perf_counter()
    traj = jax.block_until_ready(run(*args))
    t3 = time.perf_counter()
    # A different key and different start states: same shapes, so no new trace.
    obs2, env_states2 = jax.tree.map(lambda x: jnp.flip(x, axis=0), (obs, env_states))
    jax.block_until_ready(run(model_params, jax.random.fold_in(key, 1), env_states2, obs2))
    t4 = time.perf_counter()
    run_s = min(t3 - t2, t4 - t3)

    envs = sorted({0, s.num_envs // 2, s.num_envs - 1})[: s.check_envs]
    t5 = time.perf_counter()
    ref = loop_actions(
        env, planner, objectives, model_params, key, env_states, obs,
        num_steps=s.num_steps, envs=envs, steps=s.check_steps,
    )  # fmt: skip
    loop_s = time.perf_counter() - t5
    vmapped = np.asarray(traj.actions[: s.check_steps, envs])
    max_diff = float(np.max(np.abs(ref - vmapped)))
    passed = bool(np.allclose(ref, vmapped, rtol=1e-4, atol=1e-4))

    returns = np.asarray(jnp.sum(traj.rewards, axis=0))
    env_steps = s.num_steps * s.num_envs
    particles = 1 if name == "oracle" else s.num_particles
    per_plan = s.num_iterations * s.num_samples * s.horizon * particles
    imagined = env_steps * per_plan
    return {
        "trace_and_lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "first_call_s": t3 - t2,
        "second_call_s": t4 - t3,
        "run_s": run_s,
        "trace_count": counter["traces"],
        "env_steps": env_steps,
        "env_steps_per_s": env_steps / run_s,
        "imagined_transitions_per_plan": per_plan,
        "imagined_transitions": imagined,
        "imagined_transitions_per_s": imagined / run_s,
        "return_mean": float(returns.mean()),
        "return_min": float(returns.min()),
        "return_max": float(returns.max()),
        "returns": [float(r) for r in returns],
        "mean_reward_per_step": [float(r) for r in np.asarray(jnp.mean(traj.rewards, axis=1))],
        "mean_expected_return_per_step": [
            float(r) for r in np.asarray(jnp.mean(traj.expected_returns, axis=1))
        ],
        "loop_check": {
            "envs": envs,
            "steps": s.check_steps,
            "max_abs_diff": max_diff,
            "rtol": 1e-4,
            "atol": 1e-4,
            "passed": passed,
            "loop_wall_s": loop_s,
        },
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/embed_planner", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="30 steps, small CEM and model (smoke test)"
    )
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s = QUICK if args.quick else FULL
    t_start = time.perf_counter()

    spec, env = load(ENV_NAME)  # the environment's functions: reset, step, oracle, reward
    gym_env, env_params = make(ENV_NAME)  # gymnax's own, for the random training data
    key = jax.random.key(args.seed)
    reset_key, data_key, train_key, plan_key = jax.random.split(key, 4)
    reset = jax.vmap(env.reset)(jax.random.split(reset_key, s.num_envs))  # (obs, states) [B]
    cem = jaxmbrl.cem(
        jaxmbrl.CEMConfig(
            horizon=s.horizon,
            action_low=spec.action.low,
            action_high=spec.action.high,
            num_samples=s.num_samples,
            num_elites=s.num_elites,
            num_iterations=s.num_iterations,
        )
    )
    results = {}

    # (a) The true dynamics as the model.
    counter = {"traces": 0}
    objectives = oracle_objectives(env)
    run = make_pipeline(env, cem, objectives, s.num_steps, counter)
    results["oracle"] = measure(
        "oracle", run, objectives, cem, env, None, plan_key, reset, s, counter
    )

    # (b) A learned ensemble.
    t0 = time.perf_counter()
    data = jax.block_until_ready(
        collect_random_transitions(gym_env, env_params, data_key, s.num_transitions)
    )
    t1 = time.perf_counter()
    model_config, model_state, log = train_ensemble(s, train_key, data)
    jax.block_until_ready(model_state)
    t2 = time.perf_counter()
    rollout = jaxmbrl.RolloutConfig(num_particles=s.num_particles, propagation="ts1")
    counter = {"traces": 0}
    objectives = learned_objectives(model_config, rollout, env.reward_fn)
    run = make_pipeline(env, cem, objectives, s.num_steps, counter)
    results["learned"] = measure(
        "learned", run, objectives, cem, env, model_state, plan_key, reset, s, counter
    )
    results["learned"]["model"] = {
        "num_transitions": s.num_transitions,
        "collect_s": t1 - t0,
        "train_s": t2 - t1,
        "epochs": int(log.num_epochs),
        "val_error": [float(v) for v in np.asarray(log.val_error)],
        "elite_idx": [int(i) for i in np.asarray(model_state.elite_idx)],
    }

    summary = {
        "settings": dataclasses.asdict(s) | {"hidden_sizes": list(s.hidden_sizes)},
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "env": ENV_NAME,
        "planner": "cem",
        "propagation": rollout.propagation,
        "versions": reporting.machine_record(),
        "results": results,
        "wall_time_s": time.perf_counter() - t_start,
    }
    _print_summary(s, results)
    reporting.write_json(out / "embed_planner.json", summary)
    _plot(results, out / "embed_planner.png")
    print(f"\nwrote {out / 'embed_planner.json'} and {out / 'embed_planner.png'}")
    return summary


def _print_summary(s: Settings, results: dict) -> None:
    print(
        f"{s.num_envs} x {ENV_NAME}, {s.num_steps} steps, CEM H={s.horizon} N={s.num_samples} "
        f"K={s.num_elites} x {s.num_iterations} iterations, vmapped inside one jitted lax.scan"
    )
    header = (
        f"{'model':<9}{'compile s':>10}{'run s':>8}{'env steps/s':>13}{'imagined/s':>12}"
        f"{'return mean':>13}{'min':>9}{'max':>9}{'traces':>8}{'loop check':>12}"
    )
    print(header + "\n" + "-" * len(header))
    for name, r in results.items():
        check = "ok" if r["loop_check"]["passed"] else "FAILED"
        print(
            f"{name:<9}{r['trace_and_lower_s'] + r['compile_s']:>10.2f}{r['run_s']:>8.3f}"
            f"{r['env_steps_per_s']:>13,.0f}{r['imagined_transitions_per_s']:>12.3g}"
            f"{r['return_mean']:>13.1f}{r['return_min']:>9.1f}{r['return_max']:>9.1f}"
            f"{r['trace_count']:>8}{check:>12}"
        )
    m = results["learned"]["model"]
    print(
        f"ensemble: {m['num_transitions']} random transitions, {m['epochs']} epochs in "
        f"{m['train_s']:.1f} s, validation MSE (normalised) {min(m['val_error']):.2e}"
    )


def _plot(results: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    labels = {"oracle": "true dynamics", "learned": "learned ensemble"}
    for name, r in results.items():
        returns = np.sort(np.asarray(r["returns"]))[::-1]
        axes[0].plot(returns, marker=".", ls="-", label=labels[name])
        axes[1].plot(r["mean_reward_per_step"], label=labels[name])
    axes[0].set_title(f"return per environment ({len(returns)} envs, sorted)")
    axes[0].set_xlabel("environment (rank)")
    axes[0].set_ylabel("return")
    axes[1].set_title("mean reward over the environments")
    axes[1].set_xlabel("real step")
    axes[1].set_ylabel("reward")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
