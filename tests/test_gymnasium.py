"""Gymnasium environments on the host: the adapter's spec, the host loop against gymnasium's
own steps, PETS through ``jaxmbrl pets --env gymnasium:...`` (compiled once, the gymnax
path's results, exact resume), and one clear line for what cannot work.

The PETS runs share one tiny configuration (``TINY``), so their compiled functions are
built once per process.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import math

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import cli, envs, experiments, mpc
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.envs import gymnasium_adapter
from jaxmbrl.envs.host import HostEnvironment

TINY = [
    *("--steps", "20", "--episodes", "2", "--seeds", "2", "--planner", "cem"),
    *("--horizon", "5", "--population", "16", "--elites", "2", "--iterations", "1"),
    *("--particles", "2", "--ensemble-size", "2", "--model-elites", "1"),
    *("--hidden", "16,16", "--epochs", "2", "--no-progress"),
]


def pets_cli(env: str, *args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return cli.main(["pets", "--env", env, *TINY, *args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_spec_from_the_gymnasium_spaces(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT into the working folder
    spec, host = envs.load("gymnasium:Pendulum-v1")
    assert isinstance(host, HostEnvironment)
    assert (spec.name, spec.obs_dim, spec.episode_length) == ("gymnasium:Pendulum-v1", 3, 200)
    assert (spec.action.low, spec.action.high) == ((-2.0,), (2.0,))
    assert host.reward_fn is not None and host.termination_fn is None
    assert gymnasium_adapter.load("Pendulum-v1", 20)[0].episode_length == 20

    spec, host = gymnasium_adapter.load("HalfCheetah-v5")
    assert (spec.obs_dim, spec.episode_length, spec.action.low) == (17, 1000, (-1.0,) * 6)
    assert host.reward_fn is None  # learned
    spec, host = gymnasium_adapter.load("CartPole-v1")
    assert spec.action.num_actions == 2 and spec.episode_length == 500
    action = host.sample_action(jax.random.key(0))
    assert action.shape == () and action.dtype == jnp.int32


@pytest.mark.parametrize("name", ["NoSuchEnv-v0", "Pendulum-v9"])
def test_unknown_id_is_one_clear_line(tmp_path, capsys, name):
    with pytest.raises(ValueError, match=name) as err:
        envs.load(f"gymnasium:{name}")
    assert "\n" not in str(err.value)
    out = tmp_path / "out"
    assert cli.main(["pets", "--env", f"gymnasium:{name}", "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert f"gymnasium environment {name!r} cannot be made" in line and not out.exists()


def random_act(host: HostEnvironment):
    """A compiled, seed-vmapped :data:`jaxmbrl.mpc.HostAct` drawing random actions."""
    planner = mpc.random_planner(host.sample_action)

    def act(plan, obs, key):
        action, plan, info = mpc.plan_step(planner, None, None, obs, plan, key)
        return action, planner.shift(plan), info

    init = jax.vmap(lambda _: planner.init())(jnp.arange(2))
    return jax.jit(jax.vmap(act)), init


def test_host_loop_equals_gymnasiums_own_steps_and_the_known_reward():
    _, host = gymnasium_adapter.load("Pendulum-v1", 15)
    act, plan = random_act(host)
    keys = jax.random.split(jax.random.key(0), (2, 15))
    record = mpc.host_episode([host.make(), host.make()], act, plan, [3, 7], keys)
    assert record.observations.shape == (2, 15, 3) and record.actions.shape == (2, 15, 1)
    assert bool(record.alive.all()) and record.length.tolist() == [15, 15]

    for s, seed in enumerate([3, 7]):  # the same seed and actions, stepped by gymnasium
        env = gymnasium.make("Pendulum-v1")
        obs, _ = env.reset(seed=seed)
        for t in range(15):
            np.testing.assert_array_equal(record.observations[s, t], obs)
            obs, reward, *_ = env.step(np.asarray(record.actions[s, t]))
            np.testing.assert_array_equal(record.next_observations[s, t], obs)
            assert record.rewards[s, t] == np.float32(reward)

    # gymnax's Pendulum reward on observations is gymnasium's.
    flat = lambda x: x.reshape(-1, *x.shape[2:])
    known = jax.vmap(host.reward_fn)(
        flat(record.observations), flat(record.actions), flat(record.next_observations)
    )
    np.testing.assert_allclose(known, flat(record.rewards), rtol=1e-5, atol=1e-5)


def test_a_done_environment_is_not_stepped_again():
    _, host = gymnasium_adapter.load("CartPole-v1", 200)  # random actions fall in ~20 steps
    act, plan = random_act(host)
    keys = jax.random.split(jax.random.key(1), (2, 200))
    record = mpc.host_episode([host.make(), host.make()], act, plan, [0, 1], keys)
    for s in range(2):
        n = int(record.length[s])
        assert 0 < n < 200 and bool(record.alive[s, :n].all()) and not record.alive[s, n:].any()
        assert float(record.episode_return[s]) == n and not record.rewards[s, n:].any()
        last = np.broadcast_to(record.next_observations[s, n - 1], (200 - n, 4))
        np.testing.assert_array_equal(record.observations[s, n:], last)
    assert np.isnan(record.expected_returns).all()  # the random planner imagines nothing


@contextlib.contextmanager
def compiles():
    """Inside, count XLA compilations by function name (``"jit(act)"``: the host loop's
    planning call, :func:`jaxmbrl.agents.pets.make_host_episodes`)."""
    counts = collections.Counter()

    def listen(event, duration, fun_name="", **_):
        del duration
        if event == "/jax/core/compile/backend_compile_duration":
            counts[fun_name] += 1

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny run on gymnasium's and on gymnax's Pendulum-v1, with how many times the host
    run traced the planning step and compiled its planning call:
    ``(gymnasium results, gymnax results, traces, compiles)``."""
    traces = []
    real_plan_step = mpc.plan_step

    def counted(*args, **kwargs):
        traces.append(1)  # runs while tracing only: a compiled call does not get here
        return real_plan_step(*args, **kwargs)

    experiments._compiled_pets.cache_clear()  # compile in this test, whatever ran before
    gym_out = tmp_path_factory.mktemp("gymnasium") / "run"
    with pytest.MonkeyPatch.context() as patch, compiles() as counts:
        patch.setattr(mpc, "plan_step", counted)
        assert pets_cli("gymnasium:Pendulum-v1", "--out", str(gym_out)) == 0
    gymnax_out = tmp_path_factory.mktemp("gymnax") / "run"
    assert pets_cli("Pendulum-v1", "--out", str(gymnax_out)) == 0
    load = lambda out: json.loads((out / "results.json").read_text())
    return load(gym_out), load(gymnax_out), len(traces), counts["jit(act)"]


def test_pets_smoke_run_has_the_gymnax_paths_results(runs):
    gym, gymnax, *_ = runs
    assert sorted(gym) == sorted(gymnax)
    assert gym["env"] == "gymnasium:Pendulum-v1" and not gym["learned_reward"]
    assert gym["real_steps"] == gymnax["real_steps"] == [[40, 60], [40, 60]]
    returns = [x for r in gym["episode_returns"] + gym["random_episode_returns"] for x in r]
    assert len(returns) == 6 and all(math.isfinite(x) and -400 < x <= 0 for x in returns)
    assert gym["dropped_transitions"] == [[0, 0], [0, 0]]


def test_the_planning_step_compiles_once(runs):
    # One trace and one compilation for the random episodes' policy and one for the planned
    # episodes' policy, over 1 random and 2 planned episodes of 20 steps.
    assert runs[2] == 2 and runs[3] == 2


def test_resume_after_ctrl_c_equals_the_uninterrupted_run(runs, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_run = experiments.run_pets

    def ctrl_c_after_first_episode(*args, on_iteration_end, **kwargs):
        def hook(episode, results):
            on_iteration_end(episode, results)
            raise KeyboardInterrupt

        return real_run(*args, on_iteration_end=hook, **kwargs)

    monkeypatch.setattr(experiments, "run_pets", ctrl_c_after_first_episode)
    assert pets_cli("gymnasium:Pendulum-v1", "--out", str(out)) == 130
    monkeypatch.undo()
    with compiles() as counts:
        assert pets_cli("gymnasium:Pendulum-v1", "--out", str(out), "--resume") == 0
    # The restored state is placed anew, which compiles the planning call again: once.
    assert counts["jit(act)"] == 1
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["episode_returns"] == runs[0]["episode_returns"]
    assert resumed["model_val_error"] == runs[0]["model_val_error"]


def test_true_dynamics_are_refused_in_one_line(tmp_path, capsys):
    for command in (["pets", "--oracle"], ["mpc"]):
        out = tmp_path / "out"
        args = [command[0], "--env", "gymnasium:Pendulum-v1", *command[1:], "--out", str(out)]
        assert cli.main(args) == 2
        assert "steps on the host" in one_error_line(capsys) and not out.exists()
    config = pets_lib.PETSConfig(env_name="gymnasium:Pendulum-v1", episode_length=5)
    with pytest.raises(ValueError, match="no true dynamics"):
        experiments.pets_experiment(config, oracle=True)
    pets = pets_lib.make_pets(config)
    with pytest.raises(ValueError, match="cannot be compiled"):
        pets.random_episode(pets.init(jax.random.key(0)))
