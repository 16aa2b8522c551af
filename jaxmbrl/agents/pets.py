"""PETS: probabilistic ensembles with trajectory sampling (Chua et al. 2018), as pure functions.

The learn-imagine-act loop. After ``num_random_episodes`` random-action episodes seed the
replay buffer, every planned episode

1. trains the ensemble on all real data collected so far (early stopping, elites), then
2. runs one real episode of MPC (:func:`jaxmbrl.mpc.episode`) -- plan with particle
   rollouts through the learned model, act, shift the plan -- as one ``lax.scan``, and
3. adds its transitions to the replay buffer: only the finite ones. A transition with a
   NaN or infinite observation, action, reward or next observation is dropped at the
   buffer's door (:func:`episode_data` counts them), so it never reaches the normaliser or
   the model; a step whose current observation is not finite is still acted on (the MPC
   step's defined fallback, :func:`jaxmbrl.mpc.mpc_step`).

``make_pets(config)`` returns a :class:`PETS` of pure functions of one seed's
:class:`PETSState` (``init``, ``random_episode``, ``train_model``, ``planned_episode``,
``oracle_episode``, ``objective``) and the whole experiment composed as one pure
``run_experiment(key)``, which a user can ``jax.jit(jax.vmap(...))`` over seeds (as
purejaxrl's ``make_train``). :func:`pets_setup` gives the data they were built from.
Progress, checkpoints and results files are the experiment runner's job
(:mod:`jaxmbrl.runner`, :mod:`jaxmbrl.experiments`).

An environment that steps on the host (:mod:`jaxmbrl.envs.host`, e.g.
``gymnasium:Pendulum-v1``) cannot run inside a compiled episode: :func:`make_host_episodes`
splits the random and planned episodes around it -- the same keys, planning step and buffer
update -- and a Python loop steps it in between (:func:`jaxmbrl.mpc.host_episode`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from jaxmbrl import buffer as rb
from jaxmbrl import envs, mpc
from jaxmbrl.envs.host import HostEnvironment, steps_on_host
from jaxmbrl.envs.spec import Environment, EnvSpec
from jaxmbrl.models import ensemble as ens
from jaxmbrl.models import training
from jaxmbrl.models.spec import ModelSpec
from jaxmbrl.planners import registry
from jaxmbrl.planners.base import PlanInfo
from jaxmbrl.planners.cem import MBRL_LIB_OPTIONS
from jaxmbrl.rollouts import RolloutConfig, make_particle_objective
from jaxmbrl.types import Array, Objective, PRNGKey, PyTree
from jaxmbrl.validation import check_choice, check_positive_int


@dataclasses.dataclass(frozen=True)
class PETSConfig:
    """Everything one PETS experiment needs (hashable; static under ``jit``).

    The defaults come within about 15 of the optimal return on Pendulum-v1 by the eighth
    planned episode and keep a 5-seed, 10-episode run near a minute and a half on a 2-core
    CPU (AMD EPYC, Zen 5: 83 s for ``jaxmbrl pets --env Pendulum-v1 --episodes 10 --seeds 5
    --oracle``; in one process 77 s against 52 s for the previous defaults, MPPI H 30 with
    500 training steps; on an earlier AMD EPYC those took 104 s, and the defaults before
    2026-11-28, MPPI H 40, 200 x 3 with 3 x 128 members retrained from scratch, 11.5 min).
    How they were chosen (AMD EPYC, 2 cores; ``benchmarks/tune_pets.py``,
    ``benchmarks/bench_train_schedule.py``; the optimum by dynamic programming, as recorded
    in ``docs/measurements/2026-12-02``):

    * the planner: iCEM at H 40, 100 x 2 (190 candidates per call, 7,600 model steps; the
      registry's ``"auto"``). With the true dynamics on 150 start states it lost 5.9 per
      episode to the optimal return (mean -141.5 against -135.5), against 15.9 for MPPI at
      H 30, 100 x 2 (6,000 model steps, the default until 2026-12-02), 11.2 for iCEM at H 50
      and 4.8 for iCEM at H 40, 100 x 3 (1.5x the compute). With PETS, 10 seeds, last three
      episodes: seeds 0-9 -172.5 (worst seed -259.3; the optimum on those 30 start states is
      -158.5) against -180.2 (worst -282.9) for MPPI H 30 with 500 training steps; seeds
      10-19 -140.9 (worst -244.9) against -160.4 (worst -408.3);
    * two hidden layers of 64 plan as well as three of 128 (last three episodes -180.0
      against -179.0, same seeds) at 2.4x less wall time;
    * ``expectation`` propagation (the elites' mean prediction) learned as well as TS1 with
      8 particles at 4.5x less planning time; Pendulum is deterministic;
    * training continues the previous ensemble for a budget of 1,000 minibatch steps
      (``max_steps``) instead of retraining from scratch, so its cost per episode stays
      flat as data grows (500 steps took about 3.7 s per episode for 5 seeds, against 18-76
      s from scratch), at the same or lower error (see ``reinit_model``); with iCEM's longer
      horizon, 1,000 steps rather than 500 gave -172.5 rather than -180.6 on seeds 0-9; a
      member whose error on the new data is above 0.25 before the call restarts from fresh
      parameters (``restart_above``): on Pendulum-v1 continued members start each call at
      0.005-0.07 and never restart, on Reacher-misc (a goal per episode) members trained on
      one goal start at about 1.0 and do not recover by continuing;
    * a learned reward is a separate ensemble ``r(obs, action, next_obs)``
      (``reward_model``).

    Attributes:
      env_name: a gymnax id, ``"PointMass-v0"``, ``"package.module:function"``, or a name
        of another family: ``"playground:CartpoleSwingup"``, ``"brax:halfcheetah"`` (a
        backend with ``@positional``), ``"gymnasium:HalfCheetah-v5"`` (stepped on the
        host; see :func:`jaxmbrl.envs.load`).
      num_episodes: ``J``, planned (MPC) episodes after the random ones (>= 1).
      num_random_episodes: random-action episodes that seed the buffer (>= 1).
      episode_length: real steps per episode; ``None`` uses the environment's limit.
      planner: the planner and every option but the action bounds
        (:class:`~jaxmbrl.planners.registry.PlannerSpec`).
      rollout: particles, propagation (TS1, TS-infinity, expectation), discount, risk.
      model: the ensemble without its sizes (:class:`~jaxmbrl.models.spec.ModelSpec`).
      learned_reward: learn the reward with the model; ``None`` learns it only when the
        environment has no known reward function (then there is no termination function).
      reward_model: how a learned reward is learned: ``"separate"`` (the default), a second
        ensemble ``r(obs, action, next_obs)`` (``reward_model_spec``) trained on the same
        real transitions, which scores each imagined step on the dynamics model's predicted
        next observation, as a known reward function would; or ``"joint"``, a reward output
        of the dynamics ensemble, a function of ``(obs, action)`` only (mbrl-lib's PETS).
        Many rewards are simple functions of the next state (a distance to a goal) and hard
        ones of the state and action (the dynamics composed with them). Measured on
        Reacher-misc (8 random episodes, 20 % held out, AMD EPYC): the joint reward output
        of a 3 x 128 ensemble trained to convergence kept a normalised validation error of
        0.26, a separate 2 x 64 ``r(obs, action, next_obs)`` reached 0.015 in 500 steps and
        0.0017 in 2,000.
      reward_model_spec: the separate reward ensemble (deterministic heads by default; its
        elites' mean prediction is the reward).
      train: the model training configuration.
      reinit_model: train a freshly initialised ensemble on all data before every planned
        episode instead of continuing the previous one (the default; the first training
        call starts from the initial ensemble either way). Continuing needs a budget
        (``train.max_steps``) so that each call costs the same as data grows; from scratch
        needs training to convergence. Measured with ``benchmarks/bench_train_schedule.py``
        (Pendulum-v1 data growing from 400 to 2,200 rows, 5 x 3 x 128 members, error on one
        held-out set; AMD EPYC): continuing a Gaussian ensemble for 1,000 steps per call
        reached 2.9e-4 after ten calls (3.3e-4 with deterministic heads) at 13-17 s per call
        for 2 training keys, while retraining from scratch (1,000 epochs, patience 30) took
        52-105 s per call for 3 keys, growing with the data, and stood at 3e-3 to 7e-3 after
        three to five calls. (An earlier measurement, continuing for 300 epochs at
        learning rate 7.5e-4, left the continued Gaussian ensemble 10x worse than a fresh
        one; with this schedule it is not.)
      planning_matmul_dtype: the model's matmul operands while planning, ``"float32"``,
        ``"bfloat16"`` (float32 accumulation; see ``EnsembleConfig.matmul_dtype``) or
        ``"auto"``: bfloat16 where its layers run through oneDNN on this machine, else
        float32 (:func:`jaxmbrl.models.ensemble.resolve_matmul_dtype`; what it resolved to
        is :attr:`PETSSetup.planning_matmul_dtype`). Default ``"float32"``; the
        ``"mbrl-lib"`` preset's is ``"auto"``. Training always uses float32.
    """

    env_name: str = "Pendulum-v1"
    num_episodes: int = 10
    num_random_episodes: int = 1
    episode_length: int | None = None
    planner: registry.PlannerSpec = registry.PlannerSpec(
        "auto", horizon=40, options={"num_samples": 100, "num_iterations": 2}
    )
    rollout: RolloutConfig = RolloutConfig(num_particles=1, propagation="expectation")
    model: ModelSpec = ModelSpec(num_members=5, num_elites=3, hidden_sizes=(64, 64))
    learned_reward: bool | None = None
    reward_model: str = "separate"
    reward_model_spec: ModelSpec = ModelSpec(
        num_members=3, num_elites=3, hidden_sizes=(64, 64), deterministic=True
    )
    train: training.TrainConfig = training.TrainConfig(
        max_epochs=1000, max_steps=1000, patience=30, learning_rate=1e-3, restart_above=0.25
    )
    reinit_model: bool = False
    planning_matmul_dtype: str = "float32"

    def __post_init__(self):
        check_positive_int("num_episodes", self.num_episodes)
        check_positive_int("num_random_episodes", self.num_random_episodes)
        if self.episode_length is not None:
            check_positive_int("episode_length", self.episode_length)
        for name, cls in (
            ("planner", registry.PlannerSpec),
            ("rollout", RolloutConfig),
            ("model", ModelSpec),
            ("reward_model_spec", ModelSpec),
            ("train", training.TrainConfig),
        ):
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"{name} must be a {cls.__name__}, got {getattr(self, name)!r}")
        check_choice("reward_model", self.reward_model, ("separate", "joint"))
        check_choice(
            "planning_matmul_dtype", self.planning_matmul_dtype, ("auto", *ens.MATMUL_DTYPES)
        )

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PETSConfig:
        """A named preset (``"default"`` or ``"mbrl-lib"``) with field overrides.

        ``"default"``: this class's defaults, chosen to learn Pendulum-v1 well in minutes on a
        2-core CPU. ``"mbrl-lib"``: mbrl-lib 0.2.0's PETS defaults (its ``pets_cartpole``
        override with the Gaussian ensemble): 7 members of 4 x 200 SiLU, 5 elites, 20
        particles, TS1, CEM with population 350, 35 elites, 5 iterations, alpha 0.1,
        mbrl-lib's truncated-normal sampling, initial standard deviation ``(high - low) / 4``
        and restart from it at every call (``sampling="truncated", init_std_fraction=0.25,
        keep_std=False``; continuous actions only, ignored by discrete CEM), horizon 15; a
        learned reward is the dynamics
        ensemble's output (``reward_model="joint"``); Adam 7.5e-4, weight decay 3e-5, batch 256.
        One difference: it plans with ``planning_matmul_dtype="auto"`` (bfloat16 operands where
        they run through oneDNN on this machine; mbrl-lib plans in float32). Pass
        ``planning_matmul_dtype="float32"`` for mbrl-lib's precision everywhere.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)


PRESETS = {
    "default": PETSConfig(),
    "mbrl-lib": PETSConfig(
        planner=registry.PlannerSpec(
            "cem",
            horizon=15,
            options={
                "num_samples": 350,
                "num_elites": 35,
                "num_iterations": 5,
                # mbrl-lib's truncated normal, initial spread, smoothing and restart: not
                # our defaults (continuous actions; discrete CEM takes only alpha of them)
                **MBRL_LIB_OPTIONS,
            },
        ),
        rollout=RolloutConfig(num_particles=20, propagation="ts1"),
        model=ModelSpec(num_members=7, num_elites=5, hidden_sizes=(200, 200, 200, 200)),
        reward_model="joint",
        train=training.TrainConfig(
            learning_rate=7.5e-4, weight_decay=3e-5, batch_size=256, max_epochs=50
        ),
        # mbrl-lib plans in float32. bfloat16 through oneDNN plans this model 1.2-1.7x faster
        # where it runs, and chooses the same actions within the planner's own noise.
        planning_matmul_dtype="auto",
    ),
}


@dataclasses.dataclass(frozen=True)
class PETSSetup:
    """What a :class:`PETSConfig` resolves to once the environment is known (data only).

    Attributes:
      env: the environment's :class:`~jaxmbrl.envs.spec.EnvSpec` (episode length included).
      model_config: the ensemble's config (sizes from ``env``; float32 matmuls).
      planner_config: the planner's validated config (``"auto"`` resolved, bounds set).
      learned_reward: whether the reward is learned.
      buffer_capacity: real transitions the buffer holds (every episode's).
      reward_model_config: the separate reward ensemble's config when the reward is learned
        with ``reward_model="separate"`` (inputs ``concat(obs, next_obs) [2O]`` and the
        action; its one output is the reward: ``reward_only``), else ``None`` (then
        ``model_config`` has the reward output when the reward is learned).
      planning_matmul_dtype: the dynamics model's matmul operands while planning,
        ``"float32"`` or ``"bfloat16"`` (``PETSConfig.planning_matmul_dtype`` with ``"auto"``
        resolved on this machine).
    """

    env: EnvSpec
    model_config: ens.EnsembleConfig
    planner_config: Any
    learned_reward: bool
    buffer_capacity: int
    reward_model_config: ens.EnsembleConfig | None = None
    planning_matmul_dtype: str = "float32"


@struct.dataclass
class PETSState:
    """One seed's whole agent state (a pytree; vmapped over seeds by the runner).

    Attributes:
      model: the ensemble (parameters, normaliser, elites).
      buffer: all real transitions so far; items ``obs [O]``, ``action [A]`` (the model's
        action encoding: one-hot ``[D]`` for discrete actions), ``next_obs [O]``,
        ``reward []``.
      key: the PRNG key the next step consumes.
      seed_id: ``[] int32`` which seed this is (for progress reports).
      episode: ``[] int32`` episodes run so far (random and planned).
      reward_model: the separate reward ensemble (:attr:`PETSSetup.reward_model_config`),
        or ``None`` without one.
    """

    model: ens.EnsembleState
    buffer: rb.ReplayBuffer
    key: PRNGKey
    seed_id: Array
    episode: Array
    reward_model: ens.EnsembleState | None = None


@struct.dataclass
class ExperimentRecord:
    """What :func:`PETS.run_experiment` measured (add a leading ``[S]`` axis over seeds).

    Attributes:
      random_returns: ``[num_random_episodes] float32`` returns of the random episodes.
      returns: ``[J] float32`` returns of the planned episodes.
      val_error: ``[J] float32`` mean elite validation error before each planned episode.
      val_output_error: ``[J, Y] float32`` the same per model output (each observation
        dimension, then the reward when it is learned).
      imagined_first_return: ``[J] float32`` the planner's expected return at the first
        step of each planned episode.
      real_steps: ``[J] int32`` real transitions collected by the end of each planned
        episode (random ones included; dropped ones not).
      random_dropped: ``[num_random_episodes] int32`` non-finite transitions each random
        episode dropped at the buffer's door.
      dropped: ``[J] int32`` the same for each planned episode.
      diverged: ``[J] bool`` training before the episode diverged (a non-finite loss or
        validation error; the episode was then planned with a failed model: a host-side
        runner stops instead, :func:`jaxmbrl.experiments.pets_experiment`).
    """

    random_returns: Array
    returns: Array
    val_error: Array
    val_output_error: Array
    imagined_first_return: Array
    real_steps: Array
    random_dropped: Array
    dropped: Array
    diverged: Array


class PETS(NamedTuple):
    """The PETS loop as pure functions of one seed's :class:`PETSState` (functions only).

    Attributes:
      init: ``(key, seed_id=0) -> state``.
      random_episode: ``state -> (state, EpisodeRecord)``.
      train_model: ``state -> (state, TrainLog)``.
      planned_episode: ``(state, progress=None) -> (state, EpisodeRecord)``; ``progress``
        is an optional host function ``(seed_id, step, running_return)`` called every step
        through ``jax.debug.callback`` (a static argument: it changes the compiled program).
      oracle_episode: ``state -> EpisodeRecord``: the same episode planned with the true
        dynamics (an upper bound; the state is not changed).
      objective: ``(model, obs [O], reward_model=None) -> objective``: what the planner
        maximises at ``obs`` (``reward_model``: the state's separate reward ensemble, required
        when the config has one).
      run_experiment: ``key -> (state, ExperimentRecord)``: the whole experiment (random
        episodes, then ``J`` x (train, planned episode)) as one pure function.
    """

    init: Callable[..., PETSState]
    random_episode: Callable[[PETSState], tuple[PETSState, mpc.EpisodeRecord]]
    train_model: Callable[[PETSState], tuple[PETSState, training.TrainLog]]
    planned_episode: Callable[..., tuple[PETSState, mpc.EpisodeRecord]]
    oracle_episode: Callable[[PETSState], mpc.EpisodeRecord]
    objective: Callable[..., Objective]
    run_experiment: Callable[[PRNGKey], tuple[PETSState, ExperimentRecord]]


AnyEnv = tuple[EnvSpec, Environment | HostEnvironment]
"""What an environment loads as: its spec and its functions (compiled or on the host)."""


def _load(config: PETSConfig) -> AnyEnv:
    return envs.load(config.env_name, config.episode_length)


def pets_setup(config: PETSConfig, env: AnyEnv | None = None) -> PETSSetup:
    """Resolve ``config`` against its environment (loaded by name unless ``env`` is given).

    Raises:
      ValueError: unknown environment or planner, an option the planner does not take, or
        invalid settings.
    """
    spec, functions = env or _load(config)
    learned = (
        functions.reward_fn is None if config.learned_reward is None else config.learned_reward
    )
    _, planner_config = registry.build(config.planner, spec.action)
    separate = learned and config.reward_model == "separate"
    model_config = config.model.ensemble(
        obs_dim=spec.obs_dim,
        action_dim=spec.action.model_dim,
        learn_reward=learned and not separate,
    )
    reward_config = None
    if separate:
        reward_config = dataclasses.replace(
            config.reward_model_spec.ensemble(
                obs_dim=2 * spec.obs_dim, action_dim=spec.action.model_dim, learn_reward=True
            ),
            reward_only=True,
        )
    capacity = (config.num_random_episodes + config.num_episodes) * spec.episode_length
    planning = ens.resolve_matmul_dtype(config.planning_matmul_dtype, model_config.dense_library)
    return PETSSetup(spec, model_config, planner_config, learned, capacity, reward_config, planning)


def learned_reward_fn(reward_config: ens.EnsembleConfig, reward_model: ens.EnsembleState):
    """The separate reward ensemble as a reward function ``(obs [O], action [A], next_obs [O])
    -> [] float32``: its elite members' mean predicted reward."""

    def reward_fn(obs: Array, action: Array, next_obs: Array) -> Array:
        both = jnp.concatenate([obs, next_obs], axis=-1)
        mean, _ = ens.predict(reward_config, reward_model, both, action)  # [E, 1]
        return jnp.mean(mean[reward_model.elite_idx, 0])

    return reward_fn


def _train_on_buffer(
    config: PETSConfig,
    model_config: ens.EnsembleConfig,
    key: PRNGKey,
    previous: ens.EnsembleState | None,
    buffer: rb.ReplayBuffer,
    obs: Array,
    next_obs: Array,
) -> tuple[ens.EnsembleState, training.TrainLog]:
    """Train an ensemble on the buffer's valid rows with ``config.train``, continuing
    ``previous`` unless ``config.reinit_model``. ``obs [L, .]`` and ``next_obs [L, .]`` are
    the model's observation inputs and targets: the buffer's own for the dynamics ensemble;
    ``concat(obs, next_obs)`` for both in the separate reward ensemble, which predicts the
    reward alone (``reward_only``), so its ``next_obs`` is only shape-checked."""
    return training.train(
        model_config,
        config.train,
        key,
        None if config.reinit_model else previous,
        obs,
        buffer.data["action"],
        next_obs,
        buffer.data["reward"],
        mask=rb.valid_mask(buffer),
    )


def _objective_factory(
    config: PETSConfig, setup: PETSSetup, functions: Environment | HostEnvironment
):
    """``(model, obs [O]) -> objective``: particle rollouts through the model, with the known
    reward and termination unless the reward is learned."""
    reward_fn, termination_fn = functions.reward_fn, functions.termination_fn
    if setup.learned_reward:
        reward_fn = None
        if config.learned_reward is None:
            termination_fn = None
    planning_model = dataclasses.replace(
        setup.model_config, matmul_dtype=setup.planning_matmul_dtype
    )
    spec = setup.env

    def objective(
        model: ens.EnsembleState, obs: Array, reward_model: ens.EnsembleState | None = None
    ) -> Objective:
        step_reward = reward_fn
        if setup.reward_model_config is not None:
            if reward_model is None:
                raise ValueError("this PETS config learns a separate reward model: pass it")
            step_reward = learned_reward_fn(setup.reward_model_config, reward_model)
        grouped = functools.partial(ens.predict_grouped, planning_model, model)
        scores = make_particle_objective(
            config.rollout,
            grouped,
            jnp.reshape(obs, (spec.obs_dim,)).astype(jnp.float32),
            num_members=config.model.num_elites,
            reward_fn=step_reward,
            termination_fn=termination_fn,
        )
        if spec.action.is_discrete:
            return lambda key, seqs: scores(key, jax.nn.one_hot(seqs, spec.action.model_dim))
        return scores

    return objective


def _transitions(spec: EnvSpec, record: mpc.EpisodeRecord) -> dict[str, Array]:
    """An episode's steps as buffer items: ``obs [T, O]``, ``action [T, A]`` (one-hot
    ``[T, D]`` for discrete actions), ``next_obs [T, O]``, ``reward [T]``, all float32."""
    if spec.action.is_discrete:
        action = jax.nn.one_hot(record.actions, spec.action.model_dim, dtype=jnp.float32)
    else:
        action = jnp.reshape(record.actions, (-1, spec.action.model_dim)).astype(jnp.float32)
    return {
        "obs": jnp.reshape(record.observations, (-1, spec.obs_dim)).astype(jnp.float32),
        "action": action,
        "next_obs": jnp.reshape(record.next_observations, (-1, spec.obs_dim)).astype(jnp.float32),
        "reward": record.rewards,
    }


def episode_data(spec: EnvSpec, record: mpc.EpisodeRecord) -> tuple[dict[str, Array], Array, Array]:
    """What an episode adds to the replay buffer: the buffer's door check.

    Args:
      spec: the environment.
      record: one episode (no seed axis).

    Returns:
      ``(items, keep [T] bool, dropped [] int32)``: the transitions (as :func:`_transitions`),
      which of them to add (alive, and every value finite) and how many alive transitions
      were dropped for a non-finite observation, action, reward or next observation.
    """
    items = _transitions(spec, record)
    finite = rb.finite_rows(items)
    keep = record.alive & finite
    dropped = jnp.sum(record.alive & ~finite).astype(jnp.int32)
    return items, keep, dropped


def _episode_keys(spec: EnvSpec, state: PETSState) -> tuple[PRNGKey, PRNGKey, PRNGKey]:
    """``(next_key, reset_key, step_keys [T])``: one real episode's keys from ``state.key``."""
    key, k_reset, k_loop = jax.random.split(state.key, 3)
    return key, k_reset, jax.random.split(k_loop, spec.episode_length)


def _add_episode(
    spec: EnvSpec, state: PETSState, key: PRNGKey, record: mpc.EpisodeRecord
) -> PETSState:
    """``state`` after a real episode: its transitions added (through the buffer's door,
    :func:`episode_data`), ``key`` the next key, the episode counted."""
    items, keep, _ = episode_data(spec, record)
    buffer = rb.add_batch(state.buffer, items, mask=keep)
    return state.replace(buffer=buffer, key=key, episode=state.episode + 1)


def _model_objective(objective, state: PETSState) -> mpc.ObjectiveFactory:
    """``(env_state, obs) -> objective`` through ``state``'s model (and reward model)."""
    return lambda env_state, obs: objective(state.model, obs, state.reward_model)


def _progress_hook(progress, seed_id: Array) -> mpc.ProgressHook | None:
    """The MPC step's hook that sends ``(seed_id, t, running_return)`` to ``progress``."""
    if progress is None:
        return None

    def hook(t, running_return):
        jax.debug.callback(progress, seed_id, t, running_return)

    return hook


def _init_fn(setup: PETSSetup):
    def init(key: PRNGKey, seed_id: int | Array = 0) -> PETSState:
        k_model, k_next = jax.random.split(key)
        reward_model = None
        if setup.reward_model_config is not None:
            k_next, k_reward = jax.random.split(k_next)
            reward_model = ens.init(setup.reward_model_config, k_reward)
        obs = jnp.zeros((setup.env.obs_dim,), jnp.float32)
        item = {
            "obs": obs,
            "action": jnp.zeros((setup.env.action.model_dim,), jnp.float32),
            "next_obs": obs,
            "reward": jnp.zeros((), jnp.float32),
        }
        return PETSState(
            model=ens.init(setup.model_config, k_model),
            buffer=rb.init(setup.buffer_capacity, item),
            key=k_next,
            seed_id=jnp.asarray(seed_id, jnp.int32),
            episode=jnp.zeros((), jnp.int32),
            reward_model=reward_model,
        )

    return init


def _train_fn(config: PETSConfig, setup: PETSSetup):
    def train_model(state: PETSState):
        key, k_train = jax.random.split(state.key)
        data = state.buffer.data
        model, log = _train_on_buffer(
            config,
            setup.model_config,
            k_train,
            state.model,
            state.buffer,
            data["obs"],
            data["next_obs"],
        )
        if setup.reward_model_config is None:
            return state.replace(model=model, key=key), log
        key, k_reward = jax.random.split(key)
        both = jnp.concatenate([data["obs"], data["next_obs"]], axis=-1)
        reward_model, reward_log = _train_on_buffer(
            config,
            setup.reward_model_config,
            k_reward,
            state.reward_model,
            state.buffer,
            both,
            both,
        )
        # The reward's column of the per-output errors: the reward ensemble's elite mean.
        reward_err = jnp.mean(reward_log.val_output_error[reward_model.elite_idx, -1])
        reward_col = jnp.full((log.val_output_error.shape[0], 1), reward_err)
        log = log.replace(
            val_output_error=jnp.concatenate([log.val_output_error, reward_col], axis=1),
            diverged=log.diverged | reward_log.diverged,
        )
        return state.replace(model=model, key=key, reward_model=reward_model), log

    return train_model


def _experiment_fn(config: PETSConfig, spec: EnvSpec, pets: PETS):
    """The whole experiment as one pure function of a key (see :class:`ExperimentRecord`)."""

    def run_experiment(key: PRNGKey):
        state = pets.init(key)

        def seeding(s, _):
            s, record = pets.random_episode(s)
            return s, (record.episode_return, episode_data(spec, record)[2])

        state, (random_returns, random_dropped) = jax.lax.scan(
            seeding, state, None, length=config.num_random_episodes
        )

        def iteration(s, _):
            s, log = pets.train_model(s)
            elite_err = jnp.take_along_axis(log.val_error, s.model.elite_idx, axis=0)
            s, record = pets.planned_episode(s)
            return s, ExperimentRecord(
                random_returns=random_returns,
                returns=record.episode_return,
                val_error=elite_err.mean(),
                val_output_error=log.val_output_error[s.model.elite_idx].mean(axis=0),
                imagined_first_return=record.expected_returns[0],
                real_steps=s.buffer.total_added,
                random_dropped=random_dropped,
                dropped=episode_data(spec, record)[2],
                diverged=log.diverged,
            )

        state, per_episode = jax.lax.scan(iteration, state, None, length=config.num_episodes)
        return state, per_episode.replace(
            random_returns=random_returns, random_dropped=random_dropped
        )

    return run_experiment


def make_pets(config: PETSConfig, env: AnyEnv | None = None) -> PETS:
    """Build the PETS functions for ``config`` (see :class:`PETS`).

    Args:
      config: the experiment.
      env: ``(EnvSpec, Environment)`` to use instead of loading ``config.env_name``. With a
        :class:`~jaxmbrl.envs.host.HostEnvironment` only ``init``, ``train_model`` and
        ``objective`` work; the episodes are :func:`make_host_episodes`'s.

    Raises:
      ValueError: as :func:`pets_setup`; an episode function called with a host
        environment.
    """
    spec, functions = env = env or _load(config)
    setup = pets_setup(config, env)
    planner, _ = registry.build(config.planner, spec.action)
    objective = _objective_factory(config, setup, functions)

    def real_episode(state, episode_planner, make_objective, progress=None):
        """One real episode from ``state``'s key: the new state (key advanced, transitions
        added) and the record."""
        if steps_on_host(functions):
            raise ValueError(
                f"{spec.name} steps on the host: its episodes cannot be compiled; run them "
                "with make_host_episodes (jaxmbrl.experiments does)"
            )
        key, k_reset, steps = _episode_keys(spec, state)
        hook = _progress_hook(progress, state.seed_id)
        record = mpc.episode(
            functions, episode_planner, make_objective, k_reset, steps, progress=hook
        )
        return _add_episode(spec, state, key, record), record

    def random_episode(state: PETSState):
        return real_episode(state, mpc.random_planner(functions.sample_action), None)

    def planned_episode(state: PETSState, progress=None):
        return real_episode(state, planner, _model_objective(objective, state), progress)

    def oracle_episode(state: PETSState) -> mpc.EpisodeRecord:
        """The episode :func:`planned_episode` would run from ``state`` (same start state,
        same keys), planned with the true dynamics; the state is not changed."""
        make_objective = mpc.oracle(functions, gamma=config.rollout.gamma)
        return real_episode(state, planner, make_objective)[1]

    pets = PETS(
        init=_init_fn(setup),
        random_episode=random_episode,
        train_model=_train_fn(config, setup),
        planned_episode=planned_episode,
        oracle_episode=oracle_episode,
        objective=objective,
        run_experiment=lambda key: None,
    )
    return pets._replace(run_experiment=_experiment_fn(config, spec, pets))


class HostPolicy(NamedTuple):
    """How one kind of real episode acts when the environment steps on the host (functions
    only, of one seed's :class:`PETSState`: vmap and jit them).

    Attributes:
      init: ``state -> plan_state``: the planner's state at the start of an episode.
      act: ``(state, plan_state, obs [O], step_key) -> (action, plan_state, PlanInfo)``: one
        real step's planning from ``obs`` (:func:`jaxmbrl.mpc.plan_step` with the key the
        compiled step would plan with), the plan already shifted; ``action`` is
        ``[A] float32`` or ``[] int32``.
    """

    init: Callable[[PETSState], PyTree]
    act: Callable[[PETSState, PyTree, Array, PRNGKey], tuple[Array, PyTree, PlanInfo]]


class HostEpisodes(NamedTuple):
    """PETS's real episodes split around an environment that steps on the host (functions
    only, of one seed's state: vmap and jit them; :func:`jaxmbrl.mpc.host_episode` runs the
    loop in between, as :mod:`jaxmbrl.experiments` does).

    Attributes:
      start: ``state -> (reset_seed [] uint32, step_keys [T])``: the episode's keys, drawn
        from ``state.key`` as the compiled episode draws them (the reset key's bits seed the
        environment).
      random: the random policy (``sample_action``), as :attr:`PETS.random_episode`.
      planned: MPC through the state's model, as :attr:`PETS.planned_episode`.
      finish: ``(state, record) -> state``: after the episode (``record`` without a seed
        axis), as after a compiled one: transitions added through the buffer's door, the
        key advanced, the episode counted.
    """

    start: Callable[[PETSState], tuple[Array, PRNGKey]]
    random: HostPolicy
    planned: HostPolicy
    finish: Callable[[PETSState, mpc.EpisodeRecord], PETSState]


def make_host_episodes(config: PETSConfig, env: AnyEnv | None = None) -> HostEpisodes:
    """PETS's episodes for an environment that steps on the host (see :class:`HostEpisodes`;
    ``init`` and ``train_model`` are :func:`make_pets`'s).

    Args:
      config: the experiment.
      env: ``(EnvSpec, HostEnvironment)`` to use instead of loading ``config.env_name``.

    Raises:
      ValueError: as :func:`pets_setup`.
    """
    spec, functions = env = env or _load(config)
    setup = pets_setup(config, env)
    planner, _ = registry.build(config.planner, spec.action)
    objective = _objective_factory(config, setup, functions)

    def policy(episode_planner, objective_of) -> HostPolicy:
        def act(state, plan_state, obs, key):
            k_act, _ = jax.random.split(key)  # as mpc_step: (planner's key, environment's)
            action, plan_state, info = mpc.plan_step(
                episode_planner, objective_of(state), None, obs, plan_state, k_act
            )
            return action, episode_planner.shift(plan_state), info

        return HostPolicy(init=lambda state: episode_planner.init(), act=act)

    def start(state: PETSState):
        _, k_reset, steps = _episode_keys(spec, state)
        return jax.random.bits(k_reset, (), jnp.uint32), steps

    def finish(state: PETSState, record: mpc.EpisodeRecord) -> PETSState:
        key, _, _ = _episode_keys(spec, state)
        return _add_episode(spec, state, key, record)

    return HostEpisodes(
        start=start,
        random=policy(mpc.random_planner(functions.sample_action), lambda state: None),
        planned=policy(planner, functools.partial(_model_objective, objective)),
        finish=finish,
    )


__all__ = [
    "PETS",
    "PRESETS",
    "ExperimentRecord",
    "HostEpisodes",
    "HostPolicy",
    "PETSConfig",
    "PETSSetup",
    "PETSState",
    "episode_data",
    "learned_reward_fn",
    "make_host_episodes",
    "make_pets",
    "pets_setup",
]
