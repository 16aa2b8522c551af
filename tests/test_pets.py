"""PETS: the compiled loop equals references, seeds are independent, resume is exact."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.agents.pets import PETSConfig, make_pets, run
from jaxmbrl.envs import PointMass
from jaxmbrl.models.training import TrainConfig
from jaxmbrl.rollouts import RolloutConfig

TINY = PETSConfig(
    num_episodes=2,
    planner="cem",
    alpha=0.1,
    episode_length=30,
    horizon=6,
    num_samples=32,
    num_elites=4,
    num_iterations=2,
    rollout=RolloutConfig(num_particles=4),
    ensemble_size=3,
    model_elites=2,
    hidden_sizes=(32, 32),
    train=TrainConfig(max_epochs=4),
)


def test_compiled_episode_equals_step_by_step_reference():
    config = dataclasses.replace(TINY, episode_length=4)
    pets = make_pets(config)
    state = pets.init(jax.random.key(0))
    state, _ = pets.random_episode(state)
    state, _ = pets.train_model(state)
    new_state, stats = jax.jit(pets.planned_episode)(state)

    # The same episode, one Python step at a time, with the same key schedule.
    env, env_params, planner = pets.env, pets.env_params, pets.planner
    _, k_reset, k_loop = jax.random.split(state.key, 3)
    obs, env_state = env.reset_env(k_reset, env_params)
    plan_state = planner.init()
    rewards, imagined = [], []
    for step_key in jax.random.split(k_loop, 4):
        k_act, k_env = jax.random.split(step_key)
        objective = _objective(pets, config, state.model, obs)
        action, plan_state, info = planner.plan(plan_state, k_act, objective)
        plan_state = planner.shift(plan_state)
        obs, env_state, reward, _, _ = env.step_env(k_env, env_state, action, env_params)
        rewards.append(float(reward))
        imagined.append(float(info.expected_return))
    np.testing.assert_allclose(stats.rewards, rewards, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats.imagined_returns, imagined, rtol=1e-4, atol=1e-3)
    # The episode's transitions were appended to the buffer after the random ones.
    assert int(new_state.buffer.size) == 8  # 4 random + 4 planned steps
    np.testing.assert_allclose(new_state.buffer.data["reward"][4:8], rewards, rtol=1e-4)


def _objective(pets, config, model, obs):
    import functools

    from jaxmbrl.envs.reward_fns import known_functions
    from jaxmbrl.models import ensemble as ens
    from jaxmbrl.rollouts import make_particle_objective

    reward_fn, termination_fn = known_functions(config.env_name, pets.env_params)
    return make_particle_objective(
        config.rollout,
        functools.partial(ens.predict_grouped, pets.model_config, model),
        obs,
        num_members=config.model_elites,
        reward_fn=reward_fn,
        termination_fn=termination_fn,
    )


def test_vmapped_seeds_equal_separate_runs():
    both = run(TINY, [3, 5], log=None)
    alone = [run(TINY, [s], log=None) for s in (3, 5)]
    for i in range(2):
        # Equal up to float rounding: a batched reduction may sum in another order.
        np.testing.assert_allclose(
            both["episode_returns"][i], alone[i]["episode_returns"][0], rtol=1e-5
        )
        assert both["random_episode_returns"][i] == alone[i]["random_episode_returns"][0]
    assert both["episode_returns"][0] != both["episode_returns"][1]


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    full = run(TINY, [1, 2], log=None)

    def interrupt(episode, results):
        if episode == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(TINY, [1, 2], out_dir=str(tmp_path), log=None, on_episode_end=interrupt)
    resumed = run(TINY, [1, 2], out_dir=str(tmp_path), resume=True, log=None)
    assert resumed["episode_returns"] == full["episode_returns"]
    assert resumed["real_steps"] == full["real_steps"]
    # A finished run is not silently overwritten, and a different config cannot resume it.
    with pytest.raises(ValueError, match="already holds a run"):
        run(TINY, [1, 2], out_dir=str(tmp_path), log=None)
    with pytest.raises(ValueError, match="different configuration"):
        run(dataclasses.replace(TINY, horizon=7), [1, 2], out_dir=str(tmp_path), resume=True)


def test_results_layout_and_real_steps():
    results = run(TINY, 2, log=None)
    assert np.shape(results["episode_returns"]) == (2, 2)
    assert results["real_steps"] == [[60, 90], [60, 90]]
    assert all(np.isfinite(v) for seed in results["model_val_error"] for v in seed)
    assert len(results["episode_wall_s"]) == 2


def test_cartpole_discrete_termination_masks_the_buffer():
    config = dataclasses.replace(
        TINY, env_name="CartPole-v1", episode_length=60, num_episodes=1, planner="random"
    )
    config = dataclasses.replace(config, num_elites=None, num_iterations=None, alpha=None)
    pets = make_pets(config)
    assert not pets.learned_reward and pets.model_config.action_dim == 2
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
    config = dataclasses.replace(TINY, env_name="test_pets:unknown_env", num_episodes=1)
    pets = make_pets(config)
    assert pets.learned_reward and pets.model_config.learn_reward
    assert pets.model_config.output_dim == 2  # delta x and the reward
    results = run(config, 1, log=None)
    assert np.isfinite(results["episode_returns"][0][0])
    forced = make_pets(dataclasses.replace(TINY, learned_reward=True))
    assert forced.learned_reward and forced.model_config.output_dim == 4


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(num_episodes=0), "num_episodes"),
        (dict(horizon=0), "horizon"),
        (dict(num_elites=64, num_samples=32), "num_elites"),
        (dict(model_elites=4, ensemble_size=3), "model_elites"),
        (dict(episode_length=0), "episode_length"),
    ],
)
def test_bad_configuration_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(TINY, **kwargs)


def test_unknown_environment_and_planner():
    with pytest.raises(ValueError, match="unknown environment"):
        make_pets(dataclasses.replace(TINY, env_name="Nope-v0"))
    with pytest.raises(ValueError, match="unknown planner 'mppi' for a discrete"):
        make_pets(dataclasses.replace(TINY, env_name="CartPole-v1", planner="mppi"))


def test_mbrl_lib_preset():
    config = PETSConfig.preset("mbrl-lib", num_episodes=3)
    assert (config.horizon, config.num_samples, config.num_elites, config.num_iterations) == (
        15,
        350,
        35,
        5,
    )
    assert config.rollout.num_particles == 20 and config.rollout.propagation == "ts1"
    assert (config.ensemble_size, config.model_elites, config.hidden_sizes) == (7, 5, (200,) * 4)
    assert config.num_episodes == 3
    with pytest.raises(ValueError, match="unknown preset"):
        PETSConfig.preset("nope")


def test_oracle_baseline_is_recorded_per_planned_episode():
    results = run(TINY, 2, log=None, oracle=True)
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
    results = run(config, 1, log=None)
    assert np.isfinite(results["episode_returns"][0][0])
    with pytest.raises(ValueError, match="planning_matmul_dtype"):
        dataclasses.replace(TINY, planning_matmul_dtype="int8")
