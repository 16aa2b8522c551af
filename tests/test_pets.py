"""PETS: the compiled loop equals references, the pure experiment equals the runner's."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import envs
from jaxmbrl.agents.pets import PETSConfig, make_pets, pets_setup
from jaxmbrl.envs import PointMass
from jaxmbrl.experiments import run_pets
from jaxmbrl.models import ModelSpec
from jaxmbrl.models.training import TrainConfig
from jaxmbrl.planners.registry import PlannerSpec, build
from jaxmbrl.rollouts import RolloutConfig
from jaxmbrl.types import ActionSpace

TINY = PETSConfig(
    num_episodes=2,
    planner=PlannerSpec(
        "cem",
        horizon=6,
        options={"num_samples": 32, "num_elites": 4, "num_iterations": 2, "alpha": 0.1},
    ),
    episode_length=30,
    rollout=RolloutConfig(num_particles=4),
    model=ModelSpec(num_members=3, num_elites=2, hidden_sizes=(32, 32)),
    train=TrainConfig(max_epochs=4),
)


def test_compiled_episode_equals_step_by_step_reference():
    config = dataclasses.replace(TINY, episode_length=4)
    pets, setup = make_pets(config), pets_setup(config)
    state = pets.init(jax.random.key(0))
    state, _ = pets.random_episode(state)
    state, _ = pets.train_model(state)
    new_state, stats = jax.jit(pets.planned_episode)(state)

    # The same episode, one Python step at a time, with the same key schedule.
    env, env_params = envs.make(config.env_name)
    planner, _ = build(config.planner, setup.env.action)
    _, k_reset, k_loop = jax.random.split(state.key, 3)
    obs, env_state = env.reset_env(k_reset, env_params)
    plan_state = planner.init()
    rewards, imagined = [], []
    for step_key in jax.random.split(k_loop, 4):
        k_act, k_env = jax.random.split(step_key)
        objective = _objective(setup, config, state.model, obs, env_params)
        action, plan_state, info = planner.plan(plan_state, k_act, objective)
        plan_state = planner.shift(plan_state)
        obs, env_state, reward, _, _ = env.step_env(k_env, env_state, action, env_params)
        rewards.append(float(reward))
        imagined.append(float(info.expected_return))
    np.testing.assert_allclose(stats.rewards, rewards, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats.expected_returns, imagined, rtol=1e-4, atol=1e-3)
    # The episode's transitions were appended to the buffer after the random ones.
    assert int(new_state.buffer.size) == 8  # 4 random + 4 planned steps
    np.testing.assert_allclose(new_state.buffer.data["reward"][4:8], rewards, rtol=1e-4)


def _objective(setup, config, model, obs, env_params):
    from jaxmbrl.envs.reward_fns import known_functions
    from jaxmbrl.models import ensemble as ens
    from jaxmbrl.rollouts import make_particle_objective

    reward_fn, termination_fn = known_functions(config.env_name, env_params)
    return make_particle_objective(
        config.rollout,
        functools.partial(ens.predict_grouped, setup.model_config, model),
        obs,
        num_members=config.model.num_elites,
        reward_fn=reward_fn,
        termination_fn=termination_fn,
    )


def test_pure_experiment_equals_the_runner():
    """``run_experiment`` is the whole experiment as one pure function: jit(vmap) over seeds
    gives what the runner measures episode by episode."""
    pets = make_pets(TINY)
    seeds = [3, 5]
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    _, record = jax.jit(jax.vmap(pets.run_experiment))(keys)
    results = run_pets(TINY, seeds, log=None)
    np.testing.assert_allclose(record.returns, results["episode_returns"], rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(record.random_returns, results["random_episode_returns"])
    np.testing.assert_array_equal(record.real_steps, results["real_steps"])
    np.testing.assert_allclose(record.val_error, results["model_val_error"], rtol=1e-3)
    per_output = np.asarray(results["model_val_error_per_output"])  # [S, J, Y]
    assert per_output.shape == (2, TINY.num_episodes, 3)  # Pendulum: 3 observation dims
    assert results["model_outputs"] == ["obs[0]", "obs[1]", "obs[2]"]
    np.testing.assert_allclose(record.val_output_error, per_output, rtol=1e-3)
    # The per-output errors average to the one number.
    np.testing.assert_allclose(per_output.mean(-1), results["model_val_error"], rtol=1e-4)
    np.testing.assert_array_equal(record.dropped, results["dropped_transitions"])
    np.testing.assert_array_equal(record.random_dropped, results["random_dropped_transitions"])


def test_cartpole_discrete_termination_masks_the_buffer():
    config = dataclasses.replace(
        TINY,
        env_name="CartPole-v1",
        episode_length=60,
        num_episodes=1,
        planner=PlannerSpec("random", horizon=6),
    )
    pets, setup = make_pets(config), pets_setup(config)
    assert not setup.learned_reward and setup.model_config.action_dim == 2
    state = pets.init(jax.random.key(0))
    state, stats = pets.random_episode(state)
    length = int(stats.length)
    assert 0 < length < 60  # a random CartPole policy falls within 60 steps
    assert int(state.buffer.size) == length
    assert float(stats.episode_return) == length  # reward 1 per step until it falls
    actions = state.buffer.data["action"][:length]
    np.testing.assert_array_equal(jnp.sum(actions, axis=1), 1.0)  # one-hot actions


class _Unknown(PointMass):
    @property
    def name(self):
        return "SomethingNew-v0"


def unknown_env():
    """A user environment with no known reward function (``module:function`` form)."""
    env = _Unknown()
    return env, env.default_params


def test_unknown_reward_environment_learns_the_reward():
    """By default a learned reward is a separate ensemble r(obs, action, next_obs) that scores
    each imagined step on the predicted next observation; ``reward_model="joint"`` is the
    dynamics ensemble's reward output (mbrl-lib's)."""
    config = dataclasses.replace(TINY, env_name="test_pets:unknown_env", num_episodes=1)
    setup = pets_setup(config)
    assert setup.learned_reward and not setup.model_config.learn_reward
    assert setup.model_config.output_dim == 1  # delta x only
    rcfg = setup.reward_model_config
    assert (rcfg.obs_dim, rcfg.action_dim, rcfg.learn_reward) == (2, 1, True)
    assert rcfg.reward_only and rcfg.output_dim == 1  # no zero-target copies of the inputs
    results = run_pets(config, 1, log=None)
    assert np.isfinite(results["episode_returns"][0][0])
    assert results["model_outputs"] == ["obs[0]", "reward"]
    assert len(results["model_val_error_per_output"][0][0]) == 2
    joint = pets_setup(dataclasses.replace(config, reward_model="joint"))
    assert joint.model_config.learn_reward and joint.model_config.output_dim == 2
    assert joint.reward_model_config is None
    forced = pets_setup(dataclasses.replace(TINY, learned_reward=True, reward_model="joint"))
    assert forced.learned_reward and forced.model_config.output_dim == 4
    known = pets_setup(TINY)
    assert known.reward_model_config is None and not known.model_config.learn_reward
    with pytest.raises(ValueError, match="reward_model"):
        dataclasses.replace(TINY, reward_model="nope")


def test_separate_reward_model_learns_the_pendulum_reward():
    """Pendulum's reward forced to be learned: the separate reward ensemble, trained on one
    random episode, predicts held-out rewards far better than the mean, and the objective
    uses it (it is required)."""
    config = dataclasses.replace(
        TINY,
        learned_reward=True,
        episode_length=100,
        train=TrainConfig(max_epochs=1000, max_steps=300),
    )
    pets = make_pets(config)
    state, _ = jax.jit(pets.random_episode)(pets.init(jax.random.key(0)))
    state, log = jax.jit(pets.train_model)(state)
    reward_err = float(np.asarray(log.val_output_error)[:, -1].mean())
    assert reward_err < 0.2, reward_err  # normalised: 1 is the mean's error
    assert state.reward_model is not None
    obs = state.buffer.data["obs"][0]
    with pytest.raises(ValueError, match="reward model"):
        pets.objective(state.model, obs)
    seqs = jnp.zeros((4, 6, 1))
    scores = pets.objective(state.model, obs, state.reward_model)(jax.random.key(1), seqs)
    assert scores.shape == (4,) and np.all(np.isfinite(scores))


@pytest.mark.parametrize(
    ("build_config", "field"),
    [
        (lambda: dataclasses.replace(TINY, num_episodes=0), "num_episodes"),
        (lambda: TINY.planner.replace(horizon=0), "horizon"),
        (lambda: ModelSpec(num_members=3, num_elites=4), "num_elites"),
        (lambda: dataclasses.replace(TINY, episode_length=0), "episode_length"),
        (lambda: dataclasses.replace(TINY, model=(3, 2)), "model must be a ModelSpec"),
        (lambda: PlannerSpec("nope"), "unknown planner"),
        (lambda: PlannerSpec("cem", options={"horizon": 3}), "not a planner option"),
    ],
)
def test_bad_configuration_names_the_field(build_config, field):
    with pytest.raises(ValueError, match=field):
        build_config()


def test_planner_options_are_checked_against_the_chosen_planner():
    with pytest.raises(ValueError, match=r"num_elites \(64\) must be <= num_samples \(32\)"):
        pets_setup(dataclasses.replace(TINY, planner=TINY.planner.replace(num_elites=64)))
    with pytest.raises(ValueError, match="'mppi' does not take alpha, num_elites"):
        pets_setup(dataclasses.replace(TINY, planner=TINY.planner.replace(name="mppi")))
    # Every MPPI option is reachable, e.g. its temperature and noise.
    mppi = PlannerSpec("mppi", horizon=5, options={"temperature": 0.3, "noise_sigma": 0.5})
    config = pets_setup(dataclasses.replace(TINY, planner=mppi)).planner_config
    assert (config.temperature, config.noise_sigma) == (0.3, 0.5)


def test_build_drops_only_the_options_of_the_other_action_kinds_planner():
    box, choices = ActionSpace.box([-1.0], [1.0]), ActionSpace.discrete(3)
    options = {"num_samples": 16, "num_elites": 4, "sampling": "truncated", "keep_std": False}
    spec = PlannerSpec("cem", horizon=5, options=options)
    _, continuous = build(spec, box)
    assert (continuous.sampling, continuous.keep_std) == ("truncated", False)
    _, discrete = build(spec, choices)  # discrete CEM has neither option
    assert discrete.num_samples == 16 and not hasattr(discrete, "sampling")
    # "auto" is iCEM or CEM: an iCEM-only option is dropped for discrete actions only.
    _, icem = build(PlannerSpec("auto", options={"population_decay": 1.5}), box)
    assert icem.population_decay == 1.5
    build(PlannerSpec("auto", options={"population_decay": 1.5}), choices)
    # An option neither kind's planner of that name takes stays an error.
    with pytest.raises(ValueError, match="'cem' does not take temperature"):
        build(spec.replace(temperature=0.5), choices)
    with pytest.raises(ValueError, match="'random' does not take sampling"):
        build(PlannerSpec("random", options={"sampling": "truncated"}), choices)
    with pytest.raises(ValueError, match="'mppi' does not take sampling"):
        build(PlannerSpec("mppi", options={"sampling": "truncated"}), box)


def test_auto_planner_is_icem_for_boxes_and_cem_for_discrete_actions():
    auto = PlannerSpec("auto", horizon=5, options={"num_samples": 64, "num_iterations": 2})
    config = dataclasses.replace(TINY, planner=auto)
    assert type(pets_setup(config).planner_config).__name__ == "ICEMConfig"
    discrete = dataclasses.replace(config, env_name="CartPole-v1")
    assert type(pets_setup(discrete).planner_config).__name__ == "DiscreteCEMConfig"


def test_unknown_environment_and_planner():
    with pytest.raises(ValueError, match="unknown environment"):
        make_pets(dataclasses.replace(TINY, env_name="Nope-v0"))
    mppi = dataclasses.replace(TINY, env_name="CartPole-v1", planner=PlannerSpec("mppi"))
    with pytest.raises(ValueError, match="'mppi' is not available for discrete actions"):
        make_pets(mppi)


def test_presets_give_the_configurations_they_always_gave():
    config = PETSConfig.preset("mbrl-lib", num_episodes=3)
    assert config.planner == PlannerSpec(
        "cem",
        horizon=15,
        options={
            "num_samples": 350,
            "num_elites": 35,
            "num_iterations": 5,
            "alpha": 0.1,
            "sampling": "truncated",  # mbrl-lib's truncated normal, not CEM's default
            "init_std_fraction": 0.25,  # mbrl-lib's variance (high - low)**2 / 16
            "keep_std": False,  # mbrl-lib restarts from it at every call
        },
    )
    cem = pets_setup(config).planner_config  # CEM's own defaults fill the rest
    assert (cem.return_mean_elites, cem.keep_std, cem.sampling) == (True, False, "truncated")
    assert cem.alpha == 0.1 and cem.init_std_fraction == 0.25
    assert np.allclose(cem.initial_std(), 0.25 * (2.0 - -2.0))  # Pendulum's torque in [-2, 2]
    # Discrete CEM has no sampling option: the preset still builds for discrete actions.
    discrete = pets_setup(dataclasses.replace(config, env_name="CartPole-v1")).planner_config
    assert (discrete.num_samples, discrete.num_elites, discrete.alpha) == (350, 35, 0.1)
    assert config.rollout == RolloutConfig(num_particles=20, propagation="ts1")
    assert config.model == ModelSpec(num_members=7, num_elites=5, hidden_sizes=(200,) * 4)
    assert (config.model.activation, config.model.deterministic) == ("silu", False)
    assert config.train == TrainConfig(
        learning_rate=7.5e-4, weight_decay=3e-5, batch_size=256, max_epochs=50
    )
    assert config.num_episodes == 3
    default = PETSConfig.preset("default")
    assert default == PETSConfig()
    assert default.planner == PlannerSpec(
        "auto", horizon=40, options={"num_samples": 100, "num_iterations": 2}
    )
    assert default.rollout == RolloutConfig(num_particles=1, propagation="expectation")
    assert default.model == ModelSpec(num_members=5, num_elites=3, hidden_sizes=(64, 64))
    assert default.train == TrainConfig(
        max_epochs=1000, max_steps=1000, patience=30, learning_rate=1e-3, restart_above=0.25
    )
    assert default.reward_model == "separate" and config.reward_model == "joint"
    assert not default.reinit_model
    with pytest.raises(ValueError, match="unknown preset"):
        PETSConfig.preset("nope")


def test_oracle_baseline_is_recorded_per_planned_episode():
    results = run_pets(TINY, 2, log=None, oracle=True)
    oracle = np.asarray(results["oracle_returns"])
    assert oracle.shape == (2, 2) and np.all(np.isfinite(oracle))
    # The oracle episode reads the state without changing it, so it is reproducible.
    pets = make_pets(TINY)
    state = pets.init(jax.random.key(0))
    first = jax.jit(pets.oracle_episode)(state)
    second = jax.jit(pets.oracle_episode)(state)
    np.testing.assert_array_equal(first.rewards, second.rewards)


def test_bfloat16_planning_is_an_option_and_validated():
    config = dataclasses.replace(TINY, planning_matmul_dtype="bfloat16", num_episodes=1)
    results = run_pets(config, 1, log=None)
    assert np.isfinite(results["episode_returns"][0][0])
    assert results["config"]["planning_matmul_dtype"] == "bfloat16"
    assert results["planning_matmul_dtype_resolved"] == "bfloat16"
    with pytest.raises(ValueError, match="planning_matmul_dtype"):
        dataclasses.replace(TINY, planning_matmul_dtype="int8")


def test_auto_planning_dtype_reaches_the_planning_model(monkeypatch):
    from jaxmbrl import onednn
    from jaxmbrl.models import ensemble as ens

    monkeypatch.setenv(onednn.ENV_VAR, "xla")  # XLA's dots: bfloat16 shows as converts
    auto = dataclasses.replace(TINY, planning_matmul_dtype="auto", episode_length=3)
    lowered = {}
    for resolved in ("float32", "bfloat16"):
        monkeypatch.setattr(ens, "resolve_matmul_dtype", lambda d, lib, r=resolved: r)
        pets = make_pets(auto)
        state = pets.init(jax.random.key(0))
        lowered[resolved] = jax.jit(pets.planned_episode).lower(state).as_text()
    assert "bf16" not in lowered["float32"] and "bf16" in lowered["bfloat16"]


def test_per_output_log_text_shows_every_output_or_the_worst_and_the_reward():
    from jaxmbrl.experiments import _per_output_text

    two_seeds = [[[1.0, 2.0, None]], [[3.0, 4.0, None]]]  # last episode, [Y] per seed
    assert _per_output_text(two_seeds, ["obs[0]", "obs[1]", "reward"]) == (
        "by output: obs[0] 2, obs[1] 3, reward n/a"
    )
    names = [f"obs[{i}]" for i in range(10)] + ["reward"]
    values = [[[float(i) for i in range(10)] + [0.5]]]
    assert _per_output_text(values, names) == (
        "by output: obs[9] 9, obs[8] 8, obs[7] 7, reward 0.5"
    )
