"""Algorithms as the experiment runner drives them: compiled, seed-vmapped, with their metrics.

:func:`pets_experiment` turns a :class:`~jaxmbrl.agents.pets.PETSConfig` into the runner's
:class:`~jaxmbrl.runner.Experiment` (warmup: the random seeding episodes; one iteration:
train the model, optionally plan the same episode with the true dynamics, run the planned
episode) and :func:`run_pets` runs it. A new algorithm adds its own ``*_experiment`` here and
reuses the runner, the results format and the command line's output handling.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import envs, mpc, runner
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.envs.host import no_oracle_message, steps_on_host


def config_record(config: Any) -> Any:
    """A config dataclass as JSON-ready data (tuples to lists, planner options as a dict),
    so a config round-trips through a results file comparably."""
    if isinstance(config, pets_lib.registry.PlannerSpec):
        return config_record(config.as_dict())
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_record(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, dict):
        return {k: config_record(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [config_record(v) for v in config]
    return config


class ProgressChannel:
    """Where a compiled episode's per-step progress goes: the bar attached while it runs.

    Compiled programs are cached per config and call this channel's :meth:`report` (a fixed
    function); the runner's bar is attached for the duration of one call only.
    """

    def __init__(self):
        self._sink: runner.ProgressFn | None = None

    def report(self, seed_id, step, running_return) -> None:
        if self._sink is not None:
            self._sink(seed_id, step, running_return)

    def call(self, sink: runner.ProgressFn | None, fn: Callable, *args: Any) -> Any:
        """``fn(*args)`` (blocked on) with ``sink`` receiving the progress meanwhile."""
        self._sink = sink
        try:
            return jax.block_until_ready(fn(*args))
        finally:
            self._sink = None


@functools.lru_cache(maxsize=8)
def _compiled_pets(config: pets_lib.PETSConfig, progress: bool):
    """Jitted, seed-vmapped PETS functions and the progress channel they report to; a memo
    per config so that repeated runs in one process reuse the compiled programs.

    The functions that replace the state donate it: the buffer and the model are updated in
    place on the device instead of being copied. The oracle episode only reads it.

    An environment that steps on the host gets :func:`_host_episodes` instead (the same
    signatures; no oracle episode: ``None``).
    """
    env = envs.load(config.env_name, config.episode_length)  # once, for both uses below
    pets = pets_lib.make_pets(config, env)
    spec = env[0]
    channel = ProgressChannel()
    report = channel.report if progress else None
    init = jax.jit(jax.vmap(pets.init))
    train_model = jax.jit(jax.vmap(pets.train_model), donate_argnums=0)
    if steps_on_host(env[1]):
        random_episode, planned = _host_episodes(config, env, report)
        return channel, (init, random_episode, train_model, None, planned)
    planned = functools.partial(pets.planned_episode, progress=report)

    def counted(episode_fn):
        """``state -> (state, record, dropped [] int32)``: the episode and what it dropped."""

        def run(state):
            state, record = episode_fn(state)
            return state, record, pets_lib.episode_data(spec, record)[2]

        return run

    return channel, (
        init,
        jax.jit(jax.vmap(counted(pets.random_episode)), donate_argnums=0),
        train_model,
        jax.jit(jax.vmap(pets.oracle_episode)),
        jax.jit(jax.vmap(counted(planned)), donate_argnums=0),
    )


def _host_episodes(config: pets_lib.PETSConfig, env, report):
    """``(random_episode, planned_episode)`` for an environment that steps on the host, each
    ``state [S] -> (state, record, dropped [S])`` as :func:`_compiled_pets`'s.

    An episode is a Python loop over real steps (:func:`jaxmbrl.mpc.host_episode`) between
    two compiled, seed-vmapped calls (the episode's keys; the buffer update); every step
    plans for all seeds in one compiled call, traced once per policy. One environment
    instance per seed is made on first use and kept. ``report`` gets the planned episodes'
    progress.
    """
    spec, host = env
    parts = pets_lib.make_host_episodes(config, env)
    start = jax.jit(jax.vmap(parts.start))

    def finish_counted(state, record):
        return parts.finish(state, record), pets_lib.episode_data(spec, record)[2]

    finish = jax.jit(jax.vmap(finish_counted), donate_argnums=0)
    instances = []  # one host environment per seed, made on first use

    def episode(policy: pets_lib.HostPolicy, progress):
        init_plan, act = jax.jit(jax.vmap(policy.init)), jax.jit(jax.vmap(policy.act))

        def run(state):
            reset_seeds, step_keys = start(state)
            seeds = [int(s) for s in np.asarray(reset_seeds)]
            instances.extend(host.make() for _ in range(len(seeds) - len(instances)))
            # The initial plan is a constant, which jit returns uncommitted; placed like the
            # seeds' keys, it enters ``act`` as every later plan does, so the first step
            # does not compile a second program.
            plan = jax.device_put(init_plan(state), state.key.sharding)
            record = mpc.host_episode(
                instances[: len(seeds)],
                lambda plan, obs, keys: act(state, plan, obs, keys),
                plan,
                seeds,
                step_keys,
                progress=progress,
            )
            state, dropped = finish(state, record)
            return state, record, dropped

        return run

    return episode(parts.random, None), episode(parts.planned, report)


def _stop_if(bad: Any, seeds: list[int], where: str, message: str) -> None:
    """Raise :class:`~jaxmbrl.runner.RunStopped` naming the seeds where ``bad [S]`` holds."""
    idx = np.flatnonzero(np.asarray(bad))
    if idx.size:
        which = ", ".join(str(seeds[i]) for i in idx)
        raise runner.RunStopped(f"seed{'s' if idx.size > 1 else ''} {which}, {where}: {message}")


def _per_output_text(per_seed: list[list[list[float | None]]], names: list[str]) -> str:
    """The last episode's per-output validation errors, mean over seeds: every output up to
    eight of them, else the worst three (and the reward's)."""
    rows = [seed[-1] for seed in per_seed]
    means = []
    for column in zip(*rows, strict=True):
        values = [v for v in column if v is not None]
        means.append(sum(values) / len(values) if values else None)
    shown = list(zip(names, means, strict=True))
    if len(shown) > 8:
        finite = [p for p in shown if p[1] is not None]
        worst = sorted(finite, key=lambda p: -p[1])[:3]
        reward = [p for p in shown if p[0] == "reward" and p not in worst]
        shown = [*worst, *reward]
    return "by output: " + ", ".join(
        f"{name} {'n/a' if v is None else f'{v:.2g}'}" for name, v in shown
    )


ALL_DROPPED = (
    "every transition had a NaN or infinite observation, action or reward, so there is "
    "nothing to learn from; check the environment's step function"
)
DIVERGED = (
    "model training diverged (a non-finite training loss or validation error), so nothing "
    "was planned with it; lower the learning rate or check the data"
)


PETS_WARMUP_METRICS = ("random_episode_returns", "random_dropped_transitions")
PETS_METRICS = (
    "episode_returns",
    "real_steps",
    "dropped_transitions",
    "model_val_error",
    "model_val_error_per_output",
    "imagined_first_return",
    "oracle_returns",
)


def pets_experiment(
    config: pets_lib.PETSConfig,
    *,
    oracle: bool = False,
    progress: bool = False,
    seeds: list[int] | None = None,
) -> tuple[runner.Experiment, runner.ExperimentInfo]:
    """PETS for :func:`jaxmbrl.runner.run`.

    Args:
      config: the experiment.
      oracle: also plan every episode from the same start state with the true dynamics
        (``oracle_returns``): the return a perfect model would give this planner.
      progress: compile the planned episode with a per-step progress report.
      seeds: the seeds the runner will run (named in error messages; default: their
        indices).

    Metrics: ``random_episode_returns`` and ``random_dropped_transitions`` (warmup), then per
    planned episode ``episode_returns``, ``real_steps`` (transitions in the buffer so far,
    random ones included), ``dropped_transitions`` (transitions with a NaN or infinite value
    that the episode dropped at the buffer's door),
    ``model_val_error`` (mean elite validation error before the episode),
    ``model_val_error_per_output`` (the same per model output, a list per episode in the
    order of the ``model_outputs`` record: each observation dimension, then the reward when
    it is learned),
    ``imagined_first_return`` (the planner's expected return at the first step) and
    ``oracle_returns`` (empty unless ``oracle``). Phases timed: ``train``, ``oracle``,
    ``episode``.

    The experiment stops with :class:`~jaxmbrl.runner.RunStopped` (naming the seed and the
    episode; the results and checkpoints of the episodes before are kept) when an episode
    dropped every transition, when nothing valid is left to train on, or when training
    diverged (:attr:`~jaxmbrl.models.training.TrainLog.diverged`), before any planning with
    that model.
    """
    setup = pets_lib.pets_setup(config)
    # Compile exactly what is recorded: "auto" settings as resolved here, once.
    resolved = dataclasses.replace(config, planning_matmul_dtype=setup.planning_matmul_dtype)
    channel, (init, random_episode, train_model, oracle_episode, planned) = _compiled_pets(
        resolved, progress
    )
    if oracle and oracle_episode is None:
        raise ValueError(no_oracle_message(config.env_name, "the oracle baseline"))
    length = setup.env.episode_length
    outputs = [f"obs[{i}]" for i in range(setup.env.obs_dim)]
    outputs += ["reward"] if setup.learned_reward else []

    def seed_list(num: int) -> list[int]:
        return list(seeds) if seeds is not None else list(range(num))

    def warmup(state, clock):
        returns, dropped = [], []
        for i in range(config.num_random_episodes):
            state, record, drop = clock("random", random_episode, state)
            where = f"random episode {i + 1}"
            _stop_if(drop >= record.length, seed_list(len(drop)), where, ALL_DROPPED)
            returns.append(record.episode_return)
            dropped.append(drop)
        return state, {
            "random_episode_returns": jnp.stack(returns, axis=1),
            "random_dropped_transitions": jnp.stack(dropped, axis=1),
        }

    def iterate(state, clock, bar):
        episode = int(np.asarray(state.episode)[0]) - config.num_random_episodes + 1
        where = f"planned episode {episode}"
        state, log = clock("train", train_model, state)
        names = seed_list(len(log.num_train))
        _stop_if(log.num_train == 0, names, where, "nothing valid is left to train on")
        _stop_if(log.diverged, names, where, DIVERGED)
        elite_err = jnp.take_along_axis(log.val_error, state.model.elite_idx, axis=1)
        per_output = jnp.take_along_axis(
            log.val_output_error, state.model.elite_idx[..., None], axis=1
        ).mean(axis=1)  # [S, Y]
        metrics = {
            "model_val_error": elite_err.mean(axis=1),
            "model_val_error_per_output": per_output[:, None],  # one [Y] entry per seed
        }
        if oracle:
            metrics["oracle_returns"] = clock("oracle", oracle_episode, state).episode_return
        state, record, dropped = clock("episode", lambda s: channel.call(bar, planned, s), state)
        _stop_if(dropped >= record.length, names, where, ALL_DROPPED)
        metrics["episode_returns"] = record.episode_return
        metrics["imagined_first_return"] = record.expected_returns[:, 0]
        metrics["real_steps"] = state.buffer.total_added
        metrics["dropped_transitions"] = dropped
        return state, metrics

    def summary(results: dict, it: int) -> str:
        if it < 0:
            return (
                f"random episodes: {config.num_random_episodes} x {length} steps, mean return "
                f"{runner.mean_text(results['random_episode_returns'])}  dropped "
                f"{sum(map(sum, results['random_dropped_transitions']))}  "
                f"({sum(results['warmup_wall_s'].values()):.1f} s)"
            )
        rets = [r[-1] for r in results["episode_returns"] if r[-1] is not None]  # None: inf
        mean = (
            f"{sum(rets) / len(rets):.1f} [min {min(rets):.1f}, max {max(rets):.1f}]"
            if rets
            else "n/a"
        )
        oracle_text = f"oracle mean {runner.mean_text(results['oracle_returns'], -1)}  "
        return (
            f"episode {it + 1}/{config.num_episodes}: return mean {mean}  real steps "
            f"{results['real_steps'][0][-1]}  dropped "
            f"{sum(d[-1] for d in results['dropped_transitions'])}  model val err "
            f"{runner.mean_text(results['model_val_error'], -1)} "
            f"({_per_output_text(results['model_val_error_per_output'], outputs)})  "
            + (oracle_text if oracle else "")
            + f"train {results['train_wall_s'][-1]:.1f} s, "
            f"episode {results['episode_wall_s'][-1]:.1f} s"
        )

    info = runner.ExperimentInfo(
        num_iterations=config.num_episodes,
        steps_per_iteration=length,
        config=config_record(config),
        record={
            "algorithm": "PETS",
            "env": config.env_name,
            "learned_reward": setup.learned_reward,
            "model_outputs": outputs,
            "episode_length": length,
            "action_repeat": setup.env.action_repeat,
            "action_bounds": None
            if setup.env.action.is_discrete
            else {"low": list(setup.env.action.low), "high": list(setup.env.action.high)},
            "planner_resolved": type(setup.planner_config).__name__,
            "planning_matmul_dtype_resolved": setup.planning_matmul_dtype,
        },
        warmup_metrics=PETS_WARMUP_METRICS,
        iteration_metrics=PETS_METRICS,
    )
    experiment = runner.Experiment(init=init, warmup=warmup, iterate=iterate, summary=summary)
    return experiment, info


def run_pets(
    config: pets_lib.PETSConfig,
    seeds: int | list[int] = 1,
    *,
    oracle: bool = False,
    progress: bool = False,
    **run_kwargs: Any,
) -> dict:
    """A whole PETS experiment for several seeds at once (see :func:`jaxmbrl.runner.run`
    for ``out_dir``, ``resume``, ``log``, ``on_iteration_end`` and the results).

    Args:
      config: the experiment.
      seeds: a seed count ``S`` (seeds ``0..S-1``) or a list of integer seeds.
      oracle: also plan each episode with the true dynamics (``oracle_returns``).
      progress: a live bar per planned episode.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    experiment, info = pets_experiment(config, oracle=oracle, progress=progress, seeds=seed_list)
    return runner.run(experiment, info, seed_list, progress=progress, **run_kwargs)


__all__ = ["ProgressChannel", "config_record", "pets_experiment", "run_pets"]
