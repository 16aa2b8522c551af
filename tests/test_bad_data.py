"""Bad real data never poisons a run: non-finite transitions are dropped at the buffer's door
and counted, a non-finite observation still gets a finite action, a run with nothing valid
to learn from or a diverging model stops with one clear line."""

import dataclasses

import jax
import jax.numpy as jnp
import nan_envs
import numpy as np
import pytest

from jaxmbrl import buffer as rb
from jaxmbrl import cli, envs, mpc, runner
from jaxmbrl.agents.pets import PETSConfig, episode_data, make_pets
from jaxmbrl.experiments import run_pets
from jaxmbrl.models import ModelSpec, training
from jaxmbrl.planners.registry import PlannerSpec, build

TINY = PETSConfig(
    env_name="nan_envs:make",
    num_episodes=2,
    planner=PlannerSpec(
        "cem",
        horizon=5,
        options={"num_samples": 16, "num_elites": 4, "num_iterations": 2, "alpha": 0.1},
    ),
    episode_length=12,
    model=ModelSpec(num_members=2, num_elites=1, hidden_sizes=(16,)),
    train=training.TrainConfig(max_epochs=3),
)


def test_finite_rows_marks_rows_with_any_non_finite_float():
    items = {
        "obs": jnp.array([[0.0, 1.0], [jnp.nan, 0.0], [0.0, 0.0], [0.0, 0.0]]),
        "reward": jnp.array([0.0, 0.0, jnp.inf, 1.0]),
        "count": jnp.array([1, 2, 3, 4], jnp.int32),  # integers are always finite
    }
    np.testing.assert_array_equal(rb.finite_rows(items), [True, False, False, True])


@pytest.mark.parametrize(
    "items, match",
    [
        ({}, "leading"),
        ({"obs": jnp.zeros(())}, "leading"),
        ({"obs": jnp.zeros((3, 2)), "reward": jnp.zeros((4,))}, "same leading"),
    ],
)
def test_finite_rows_rejects_items_without_one_leading_axis(items, match):
    with pytest.raises(ValueError, match=match):
        rb.finite_rows(items)


def test_non_finite_transitions_are_dropped_and_counted():
    results = run_pets(TINY, seeds=2, log=None)
    # Every episode (random and planned) has a NaN observation, which spoils the transition
    # it ends and the one it starts, and an infinite reward: 3 bad transitions.
    assert results["random_dropped_transitions"] == [[3]] * 2
    assert results["dropped_transitions"] == [[3, 3]] * 2
    # real_steps counts what the buffer holds: the finite transitions only.
    kept = TINY.episode_length - 3
    assert results["real_steps"] == [[2 * kept, 3 * kept]] * 2
    assert all(np.isfinite(v) for seed in results["model_val_error"] for v in seed)
    # The real return includes the environment's infinite reward: written as None (null).
    assert results["episode_returns"] == [[None, None]] * 2


def test_buffer_never_holds_a_non_finite_value():
    pets = make_pets(TINY)
    state = pets.init(jax.random.key(0))
    state, record = jax.jit(pets.random_episode)(state)
    state, _ = jax.jit(pets.train_model)(state)
    state, record = jax.jit(pets.planned_episode)(state)
    assert not bool(jnp.all(jnp.isfinite(record.observations)))  # the environment's NaN
    data, valid = rb.ordered(state.buffer)
    for name, leaf in data.items():
        assert bool(jnp.all(jnp.isfinite(leaf[valid]))), name
    assert int(state.buffer.size) == 2 * (TINY.episode_length - 3)
    _, keep, dropped = episode_data(_spec(TINY), record)
    assert int(dropped) == 3 and int(jnp.sum(keep)) == TINY.episode_length - 3


def _spec(config):
    return envs.load(config.env_name, config.episode_length)[0]


@pytest.mark.parametrize("planner_name", ["random", "cem", "icem", "mppi"])
def test_non_finite_observation_gets_a_finite_action_in_bounds(planner_name):
    spec, env = envs.load("nan_envs:make", 8)
    planner, _ = build(PlannerSpec(planner_name, horizon=4), spec.action)
    objective = mpc.oracle(env)
    record = jax.jit(lambda k: mpc.episode(env, planner, objective, k, jax.random.split(k, 8)))(
        jax.random.key(1)
    )
    bad = ~jnp.all(jnp.isfinite(record.observations), axis=-1)
    assert bool(bad[nan_envs.BAD_STEP])  # planned from a NaN observation
    assert bool(jnp.all(jnp.isfinite(record.actions)))
    assert bool(jnp.all(jnp.abs(record.actions) <= 2.0))
    # The imagined return of that step is NaN by definition; the steps before have one
    # (later ones see the environment's infinite reward, which the planner sanitises).
    exp = np.asarray(record.expected_returns)
    assert np.isnan(exp[nan_envs.BAD_STEP]) and np.all(np.isfinite(exp[:4]))


def test_an_episode_with_no_finite_transition_stops_the_run(tmp_path):
    config = dataclasses.replace(TINY, env_name="nan_envs:make_all_bad")
    with pytest.raises(runner.RunStopped, match=r"seeds 3, 4, random episode 1: every transition"):
        run_pets(config, seeds=[3, 4], log=None, out_dir=str(tmp_path / "run"))


def test_a_diverging_model_stops_before_planning_with_it(tmp_path):
    config = dataclasses.replace(
        TINY,
        env_name="Pendulum-v1",
        train=training.TrainConfig(max_epochs=50, learning_rate=1e12),
    )
    ended = []
    with pytest.raises(
        runner.RunStopped, match=r"seed 7, planned episode 1: model training diverged"
    ):
        run_pets(
            config,
            seeds=[7],
            log=None,
            out_dir=str(tmp_path / "run"),
            on_iteration_end=lambda it, results: ended.append(it),
        )
    assert ended == []  # no planned episode ran with the diverged model
    # The warmup's checkpoint is kept and loadable: the same run resumes to the same stop.
    with pytest.raises(runner.RunStopped, match="planned episode 1"):
        run_pets(config, seeds=[7], log=None, out_dir=str(tmp_path / "run"), resume=True)


def test_training_flags_divergence_and_stops_early():
    model = ModelSpec(num_members=2, num_elites=1, hidden_sizes=(16,)).ensemble(
        obs_dim=3, action_dim=1, learn_reward=False
    )
    key = jax.random.key(0)
    obs = jax.random.normal(key, (64, 3))
    act = jax.random.normal(key, (64, 1))
    good = training.TrainConfig(max_epochs=20)
    bad = training.TrainConfig(max_epochs=20, learning_rate=1e12)
    _, log = training.train(model, good, key, None, obs, act, obs + 0.1 * act)
    assert not bool(log.diverged)
    # The per-output errors (3 observation dims here) average to the per-member error.
    assert log.val_output_error.shape == (2, 3)
    np.testing.assert_allclose(log.val_output_error.mean(-1), log.val_error, rtol=1e-5)
    _, log = training.train(model, bad, key, None, obs, act, obs + 0.1 * act)
    assert bool(log.diverged)
    assert int(log.num_epochs) < 20  # training stopped at the divergence


def test_cli_all_non_finite_environment_stops_with_one_line_exit_1(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "pets",
        "--env",
        "nan_envs:make_all_bad",
        "--steps",
        "10",
        "--episodes",
        "1",
        "--horizon",
        "3",
        "--population",
        "8",
        "--iterations",
        "1",
        "--ensemble-size",
        "2",
        "--model-elites",
        "1",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("jaxmbrl pets: stopped: seed 0, random episode 1: every transition")
    assert not (out / "results.json").exists()
