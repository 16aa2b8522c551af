"""MuJoCo physics families (``jaxmbrl.envs.brax_style``): the adapter steps as the library
does, with and without an action repeat; the oracle's returns are the library's rewards;
specs; one-line errors; dispatch by prefix; tiny ``jaxmbrl pets`` and ``jaxmbrl mpc`` runs
per family.

Compiling MuJoCo physics is slow on CPU, so each family's comparisons run as one jitted
program, compiled once per module (fixtures ``playground_run`` and ``brax_run``), on the
smallest tasks (Playground ``PendulumSwingup``, half the compile time of
``CartpoleSwingup``; Brax ``inverted_pendulum`` on ``spring``).
"""

import contextlib
import io
import json
import math
import subprocess
import sys
import types
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmbrl
from jaxmbrl import cli
from jaxmbrl.envs import brax_style, families, mujoco_rewards
from jaxmbrl.types import ActionSpace

pytest.importorskip("mujoco_playground")
pytest.importorskip("brax")

# brax 0.14.2 on mujoco 3.x, inside brax's own contact code
pytestmark = pytest.mark.filterwarnings("ignore:Accessing `ncon`:DeprecationWarning")

H = 6  # real steps compared (12 underlying steps with an action repeat of 2)
GAMMA = 0.9
TOL = {"rtol": 1e-5, "atol": 1e-5}


class Run(NamedTuple):
    """What one family's compiled comparison program returns."""

    lib_obs: jax.Array  # [2H, O] the library's observations over the repeated actions
    lib_reward: jax.Array  # [2H]
    lib_done: jax.Array  # [2H] bool
    obs0: jax.Array  # [O] the adapter's reset observation
    lib_obs0: jax.Array  # [O] the library's reset observation
    obs1: jax.Array  # [2H, O] adapter, no action repeat, over the repeated actions
    reward1: jax.Array  # [2H]
    done1: jax.Array  # [2H] bool
    obs2: jax.Array  # [H, O] adapter, action repeat 2, over the actions
    reward2: jax.Array  # [H]
    done2: jax.Array  # [H] bool
    oracle: jax.Array  # [3] the oracle (gamma 0.9, chunks of 2) on three [2H, A] candidates


def compare(raw, key, actions) -> Run:
    """Roll the library's ``raw`` env and the adapter side by side; ``actions`` ``[H, A]``."""
    env1 = brax_style.functions(raw)
    env2 = brax_style.functions(raw, action_repeat=2)
    twice = jnp.repeat(actions, 2, axis=0)  # [2H, A]: each action for two underlying steps

    def lib_step(state, action):
        state = raw.step(state, action)
        return state, (state.obs, state.reward, state.done > 0)

    def adapter_step(env):
        def step(state, action):
            obs, state, reward, done = env.step(key, state, action)
            return state, (obs, reward, done)

        return step

    lib0 = raw.reset(key)
    _, lib = jax.lax.scan(lib_step, lib0, twice)
    obs0, state = env1.reset(key)
    _, one = jax.lax.scan(adapter_step(env1), state, twice)
    _, two = jax.lax.scan(adapter_step(env2), state, actions)
    candidates = jnp.stack([twice, jnp.zeros_like(twice), twice])  # [3, 2H, A]
    oracle = env1.oracle_objective(state, GAMMA, 2)(key, candidates)
    return Run(*lib, obs0, lib0.obs, *one, *two, oracle)


def run_family(raw, seed: int, actions) -> Run:
    return jax.jit(lambda k, a: compare(raw, k, a))(jax.random.key(seed), actions)


@pytest.fixture(scope="module")
def playground_run():
    from mujoco_playground import registry

    raw = registry.load("PendulumSwingup", config_overrides={"impl": "jax"})
    # Seed 10 starts the pole 6 degrees from upright (reward 1 within 8 degrees); pushed at
    # full torque it leaves the rewarded band after 5 of the 12 steps.
    return run_family(raw, 10, jnp.ones((H, 1), jnp.float32))


@pytest.fixture(scope="module")
def brax_run():
    import brax.envs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # brax: "not actively being maintained"
        raw = brax.envs.get_environment("inverted_pendulum", backend="spring")
    # Pushed at full force the pole falls: done at step 7 of the 12.
    return run_family(raw, 3, jnp.ones((H, 1), jnp.float32))


@pytest.fixture(params=["playground", "brax"])
def run(request) -> Run:
    return request.getfixturevalue(f"{request.param}_run")


def test_reset_and_step_equal_the_library(run):
    np.testing.assert_allclose(run.obs0, run.lib_obs0, **TOL)
    np.testing.assert_allclose(run.obs1, run.lib_obs, **TOL)
    np.testing.assert_allclose(run.reward1, run.lib_reward, **TOL)
    np.testing.assert_array_equal(run.done1, run.lib_done)
    assert run.reward1.dtype == jnp.float32 and run.done1.dtype == jnp.bool_


def _repeat2_reference(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Rewards and dones of pairs of library steps: summed up to the first done, any done."""
    reward = np.asarray(run.lib_reward, np.float64).reshape(H, 2)
    done = np.asarray(run.lib_done).reshape(H, 2)
    reward = reward[:, 0] + np.where(done[:, 0], 0.0, reward[:, 1])
    return reward, done.any(axis=1)


def test_action_repeat_2_equals_two_library_steps(run):
    reward, done = _repeat2_reference(run)
    np.testing.assert_allclose(run.obs2, run.lib_obs[1::2], **TOL)
    np.testing.assert_allclose(run.reward2, reward, **TOL)
    np.testing.assert_array_equal(run.done2, done)


def _return_until_done(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> float:
    total = 0.0
    for t, (r, d) in enumerate(zip(rewards, dones, strict=True)):
        total += gamma**t * r
        if d:
            break
    return total


def test_oracle_return_is_the_discounted_sum_of_library_rewards(run):
    lib_reward, lib_done = np.asarray(run.lib_reward), np.asarray(run.lib_done)
    expected = _return_until_done(lib_reward, lib_done, GAMMA)
    oracle = np.asarray(run.oracle)
    np.testing.assert_allclose(oracle[[0, 2]], [expected, expected], rtol=1e-5)
    assert np.isfinite(oracle).all()


def test_playground_rewards_change_within_the_rollout(playground_run):
    np.testing.assert_array_equal(playground_run.lib_reward, [1.0] * 5 + [0.0] * 7)


def test_brax_termination_stops_the_reward(brax_run):
    # inverted_pendulum rewards 1 per step; pushed at full force, step 7 is done.
    assert np.asarray(brax_run.lib_done).argmax() == 6
    np.testing.assert_allclose(brax_run.oracle[0], sum(GAMMA**t for t in range(7)), rtol=1e-6)
    np.testing.assert_allclose(brax_run.reward2[:4], [2.0, 2.0, 2.0, 1.0])
    np.testing.assert_array_equal(brax_run.done2[:4], [False, False, False, True])


def test_playground_spec():
    spec, env = jaxmbrl.envs.load("playground:CartpoleSwingup")
    assert spec.name == "playground:CartpoleSwingup"
    assert spec.obs_dim == 5
    assert spec.action == ActionSpace.box([-1.0], [1.0])
    assert (spec.episode_length, spec.action_repeat, spec.ctrl_dt) == (1000, 1, 0.01)
    action = env.sample_action(jax.random.key(0))
    assert action.shape == (1,) and action.dtype == jnp.float32
    assert bool(jnp.all(jnp.abs(action) <= 1.0))
    known = mujoco_rewards.known_functions("playground", "CartpoleSwingup")
    assert (env.reward_fn is None, env.termination_fn is None) == (
        known[0] is None,
        known[1] is None,
    )
    spec3, env3 = jaxmbrl.envs.load("playground:CartpoleSwingup", action_repeat=3)
    assert (spec3.episode_length, spec3.action_repeat) == (334, 3)  # ceil(1000 / 3)
    # A repeated step's reward sums over states the observations do not show: no known reward.
    assert env3.reward_fn is None and env3.termination_fn is None
    spec50, _ = jaxmbrl.envs.load("playground:CartpoleSwingup", 50, action_repeat=2)
    assert (spec50.episode_length, spec50.action_repeat) == (50, 2)


def test_brax_spec():
    spec, env = jaxmbrl.envs.load("brax:inverted_pendulum")
    assert spec.name == "brax:inverted_pendulum@spring"
    assert spec.obs_dim == 4
    assert spec.action == ActionSpace.box([-1.0], [1.0])
    assert (spec.episode_length, spec.action_repeat) == (1000, 1)
    assert spec.ctrl_dt == pytest.approx(0.02)
    assert env.reward_fn is None or callable(env.reward_fn)
    spec2, _ = jaxmbrl.envs.load("brax:inverted_pendulum@positional", 20, action_repeat=2)
    assert spec2.name == "brax:inverted_pendulum@positional"
    assert (spec2.episode_length, spec2.action_repeat) == (20, 2)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("playground:NoSuchTask", ["NoSuchTask", "CartpoleSwingup", "CheetahRun"]),
        ("playground:Go1JoystickFlatTerrain", ["known playground tasks", "ReacherEasy"]),
        ("brax:nosuch", ["nosuch", "halfcheetah", "inverted_pendulum", "spring"]),
        ("brax:hopper@nosuch", ["backend", "nosuch", "spring", "positional"]),
        ("brax:hopper@", ["backend", "spring"]),
        ("brax:swimmer", ["backend", "spring", "generalized"]),
    ],
)
def test_bad_names_are_one_clear_line(name, words):
    with pytest.raises(ValueError) as info:
        jaxmbrl.envs.load(name)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("name", "blocked"),
    [("playground:CartpoleSwingup", ["mujoco_playground"]), ("brax:hopper", ["brax"])],
)
def test_missing_extra_is_one_clear_line(monkeypatch, name, blocked):
    for module in list(sys.modules):
        if module.split(".")[0] in blocked:
            monkeypatch.setitem(sys.modules, module, None)
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ValueError, match=r"pip install 'jaxmbrl\[mujoco\]'") as info:
        jaxmbrl.envs.load(name)
    assert "\n" not in str(info.value)


def test_action_repeat_must_be_a_positive_int():
    with pytest.raises(ValueError, match="action_repeat"):
        jaxmbrl.envs.load("playground:CartpoleSwingup", action_repeat=0)
    with pytest.raises(ValueError, match="action_repeat"):
        jaxmbrl.EnvSpec("x", 3, ActionSpace.box([-1.0], [1.0]), 10, action_repeat=0)
    with pytest.raises(ValueError, match="ctrl_dt"):
        jaxmbrl.EnvSpec("x", 3, ActionSpace.box([-1.0], [1.0]), 10, ctrl_dt=-0.01)


class _FakeState(NamedTuple):
    obs: dict


class _VisionEnv:
    """An environment with brax's interface whose observation is a dictionary of images."""

    action_size = 2

    def reset(self, key):
        del key
        return _FakeState({"pixels/view_0": jnp.zeros((64, 64, 3))})


def test_non_flat_observation_is_refused():
    with pytest.raises(ValueError, match="not one flat vector") as info:
        brax_style.wrap("playground:Vision", _VisionEnv(), env_episode_length=10)
    assert "\n" not in str(info.value)


def test_dispatch_by_prefix(monkeypatch):
    assert families.family_of("playground:CheetahRun") == "playground"
    assert families.family_of("brax:hopper@positional") == "brax"
    assert families.family_of("gymnasium:HalfCheetah-v5") == "gymnasium"
    assert families.family_of("tests.nan_envs:make") == "gymnax"
    assert families.family_of("Pendulum-v1") == "gymnax"
    spec, _ = jaxmbrl.envs.load("Pendulum-v1", 7)
    assert (spec.episode_length, spec.action_repeat, spec.ctrl_dt) == (7, 1, None)
    calls = []
    fake = types.ModuleType("jaxmbrl.envs.gymnasium_adapter")
    fake.load = lambda name, episode_length=None: calls.append((name, episode_length)) or "ok"
    monkeypatch.setitem(sys.modules, "jaxmbrl.envs.gymnasium_adapter", fake)
    monkeypatch.setattr(jaxmbrl.envs, "gymnasium_adapter", fake, raising=False)
    assert jaxmbrl.envs.load("gymnasium:HalfCheetah-v5", 30) == "ok"
    assert calls == [("HalfCheetah-v5", 30)]


def test_import_jaxmbrl_does_not_import_the_mujoco_extra():
    code = (
        "import sys, jaxmbrl, jaxmbrl.envs\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('brax', 'mujoco_playground', "
        "'mujoco')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the CLI on each family: tiny runs, the smallest tasks ----------------------------------

FAMILY_TASKS = [
    pytest.param("playground:PendulumSwingup", False, id="playground"),
    pytest.param("brax:inverted_pendulum", True, id="brax"),  # no known reward: learned
]
TINY_PLANNER = [
    *("--planner", "cem", "--horizon", "5", "--population", "16", "--elites", "2"),
    *("--iterations", "1"),
]
TINY_PETS = [
    *("--steps", "20", "--episodes", "1", "--random-episodes", "1", *TINY_PLANNER),
    *("--particles", "2", "--ensemble-size", "2", "--model-elites", "1", "--hidden", "16,16"),
    *("--epochs", "2", "--no-progress"),
]


def cli_results(out, *args: str) -> dict:
    """``jaxmbrl *args --out out`` (exit 0, output swallowed): its ``results.json``."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main([*args, "--out", str(out)]) == 0
    return json.loads((out / "results.json").read_text())


def finite(rows) -> list[float]:
    values = [x for row in rows for x in row]
    assert values and all(x is not None and math.isfinite(x) for x in values), rows
    return values


@pytest.mark.parametrize(("name", "learned_reward"), FAMILY_TASKS)
def test_pets_smoke_run_records_the_family(tmp_path, name, learned_reward):
    res = cli_results(tmp_path / "pets", "pets", "--env", name, *TINY_PETS)
    assert res["env"] == name and res["learned_reward"] is learned_reward
    assert (res["episode_length"], res["action_repeat"]) == (20, 1)
    assert res["action_bounds"] == {"low": [-1.0], "high": [1.0]}
    # Rewards lie in [0, 1] per step for both tasks; inverted_pendulum may fall early.
    returns = finite(res["episode_returns"]) + finite(res["random_episode_returns"])
    assert len(returns) == 2 and all(0.0 <= r <= 20.0 for r in returns)
    assert 0 < res["real_steps"][0][-1] <= 40
    assert res["dropped_transitions"] == [[0]]


@pytest.mark.parametrize(("name", "learned_reward"), FAMILY_TASKS)
def test_mpc_with_the_true_physics_smoke_run(tmp_path, name, learned_reward):
    del learned_reward
    res = cli_results(tmp_path / "mpc", "mpc", "--env", name, "--steps", "5", *TINY_PLANNER)
    assert res["env"] == name and res["num_steps"] == 5
    (ret,) = finite(res["episode_returns"])
    assert 0.0 <= ret <= 5.0
    if name.startswith("brax:"):
        assert ret == 5.0  # planning with the true physics keeps the pole up for 5 steps
