"""Known MuJoCo rewards and terminations equal the environments' own, on observations.

Each environment's rollout is jitted once, on ``B`` start states of two kinds: *random*
(states spread over the task's range, uniform actions) and *near the goal* (pole upright,
target at the finger, cheetah running fast), where the tolerance functions are non-trivial.
Start states are written into ``mjx.Data`` directly (no ``env.reset``: its compile costs more
than the step's) and the first transition, whose ``obs`` is a placeholder, is dropped.
Rollouts compile with ``xla_backend_optimization_level=0`` (about 40 % less compile time on
CPU); the reward functions compile with the defaults. The file takes about 80-90 s on 2 CPU
cores. Tests that need ``mujoco_playground`` or ``brax`` skip when it is not installed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.envs.mujoco_rewards import _tolerance, known_functions, known_names

_FAST_COMPILE = {"xla_backend_optimization_level": 0}
_BATCH = 8  # start states of each kind
_STEPS = 40  # control steps per rollout

# Largest |reward_fn - env reward| accepted. Cartpole, Pendulum and Reacher recompute the env's
# float32 operations on the very values the observation holds (measured difference: 0); the
# slack only covers a different XLA fusion. CheetahRun re-runs the kinematics with rootx = 0
# (the observation has no x), which changes float32 rounding of the centre-of-mass velocity
# (speeds up to ~15 m/s, a few ulps ~1e-6) and the reward is speed / 10.
_REWARD_ATOL = {
    "CartpoleSwingup": 1e-6,
    "CartpoleBalance": 1e-6,
    "PendulumSwingup": 1e-6,
    "ReacherEasy": 1e-6,
    "ReacherHard": 1e-6,
    "CheetahRun": 2e-6,
}
_OBS_SIZE = {
    "CartpoleSwingup": 5,
    "CartpoleBalance": 5,
    "PendulumSwingup": 3,
    "ReacherEasy": 6,
    "ReacherHard": 6,
    "CheetahRun": 17,
}
_BRAX_OBS_SIZE = {"hopper": 11, "walker2d": 17}


# --- start states, sampled on the host ---------------------------------------------------


def _starts_cartpole(rng, model, near):
    del model
    if near:  # pole within ~11 degrees of upright, cart near the centre
        qpos = np.stack([rng.uniform(-0.3, 0.3, _BATCH), rng.uniform(-0.2, 0.2, _BATCH)], -1)
        return qpos, 0.1 * rng.standard_normal((_BATCH, 2)), None, 1.0
    qpos = np.stack([rng.uniform(-1.5, 1.5, _BATCH), rng.uniform(-np.pi, np.pi, _BATCH)], -1)
    return qpos, rng.standard_normal((_BATCH, 2)) * [1.0, 3.0], None, 1.0


def _starts_pendulum(rng, model, near):
    del model
    if near:  # within ~14 degrees of upright: it falls through the 8-degree bound
        return (
            rng.uniform(-0.25, 0.25, (_BATCH, 1)),
            0.3 * rng.standard_normal((_BATCH, 1)),
            None,
            1,
        )
    return rng.uniform(-np.pi, np.pi, (_BATCH, 1)), 2 * rng.standard_normal((_BATCH, 1)), None, 1


def _starts_reacher(rng, model, near):
    import mujoco

    wrist = model.joint("wrist").id
    qpos = np.stack(
        [rng.uniform(-np.pi, np.pi, _BATCH), rng.uniform(*model.jnt_range[wrist], _BATCH)], -1
    )
    angle = rng.uniform(0, 2 * np.pi, _BATCH)
    mocap = np.tile(model.body("target").pos, (_BATCH, 1, 1))
    if near:  # target within 1.5 touch radii of the finger; small actions keep it close
        radii = model.geom("target").size[0] + model.geom("finger").size[0]
        data = mujoco.MjData(model)
        finger = []
        for q in qpos:
            data.qpos[:] = q
            mujoco.mj_kinematics(model, data)
            finger.append(data.geom_xpos[model.geom("finger").id, :2].copy())
        radius = rng.uniform(0, 1.5 * radii, _BATCH)
        mocap[:, 0, :2] = np.stack(finger) + radius[:, None] * np.stack(
            [np.sin(angle), np.cos(angle)], -1
        )
        return qpos, np.zeros((_BATCH, 2)), mocap, 0.2
    radius = rng.uniform(0.05, 0.2, _BATCH)  # as the env's reset
    mocap[:, 0, :2] = radius[:, None] * np.stack([np.sin(angle), np.cos(angle)], -1)
    return qpos, rng.standard_normal((_BATCH, 2)), mocap, 1.0


def _starts_cheetah(rng, model, near):
    qpos = np.zeros((_BATCH, model.nq))
    qpos[:, 3:] = rng.uniform(model.jnt_range[3:, 0], model.jnt_range[3:, 1], (_BATCH, 6))
    qvel = rng.standard_normal((_BATCH, model.nv))
    if near:  # running forward near and past the 10 m/s target
        qvel[:, 0] = rng.uniform(6.0, 14.0, _BATCH)
    return qpos, qvel, None, 1.0


_STARTS = {
    "CartpoleSwingup": _starts_cartpole,
    "CartpoleBalance": _starts_cartpole,
    "PendulumSwingup": _starts_pendulum,
    "ReacherEasy": _starts_reacher,
    "ReacherHard": _starts_reacher,
    "CheetahRun": _starts_cheetah,
}


# --- rollouts ------------------------------------------------------------------------------


def _playground_transitions(name):
    """Random and near-goal transitions of Playground task ``name``, one compile.

    Returns:
      ``(obs, action, next_obs, reward)``, each ``[2, B * (T - 1), ...]`` (index 0: random,
      1: near the goal), as NumPy arrays.
    """
    registry = pytest.importorskip("mujoco_playground").registry
    from mujoco import mjx
    from mujoco_playground import State

    env = registry.load(name, config_overrides={"impl": "jax"})
    config = registry.get_default_config(name)
    template = mjx.make_data(env.mj_model, impl="jax", naconmax=config.naconmax, njmax=config.njmax)
    rng = np.random.default_rng(0)
    kinds = [_STARTS[name](rng, env.mj_model, near) for near in (False, True)]
    qpos = jnp.asarray(np.concatenate([k[0] for k in kinds]), jnp.float32)
    qvel = jnp.asarray(np.concatenate([k[1] for k in kinds]), jnp.float32)
    mocap = np.broadcast_to(template.mocap_pos, (_BATCH, *template.mocap_pos.shape))
    mocap = jnp.asarray(np.concatenate([mocap if k[2] is None else k[2] for k in kinds]))
    scale = jnp.repeat(jnp.asarray([k[3] for k in kinds], jnp.float32), _BATCH)

    def rollout(qpos, qvel, mocap_pos, scale, key):
        data = template.replace(qpos=qpos, qvel=qvel, mocap_pos=mocap_pos.astype(jnp.float32))

        def step(carry, key):
            data, obs = carry
            action = scale * jax.random.uniform(key, (env.action_size,), minval=-1, maxval=1)
            zero = jnp.float32(0)
            state = env.step(State(data, obs, zero, zero, {}, {"rng": key}), action)
            return (state.data, state.obs), (obs, action, state.obs, state.reward)

        start = (data, jnp.zeros(_OBS_SIZE[name], jnp.float32))
        return jax.lax.scan(step, start, jax.random.split(key, _STEPS))[1]

    keys = jax.random.split(jax.random.key(1), 2 * _BATCH)
    run = jax.jit(jax.vmap(rollout), compiler_options=_FAST_COMPILE)
    out = run(qpos, qvel, mocap, scale, keys)
    # Drop t = 0 (its obs is the placeholder); group as [kind, B * (T - 1), ...].
    return tuple(np.asarray(x)[:, 1:].reshape(2, -1, *x.shape[2:]) for x in out)


def _brax_transitions(name):
    """Random-action transitions of brax task ``name`` (spring), from start states perturbed
    across the healthy ranges so that many episodes end.

    Returns:
      ``(obs, action, next_obs, done)``, each ``[2 * B * (3 * T - 1), ...]``, as NumPy arrays.
    """
    envs = pytest.importorskip("brax.envs")
    from brax.envs.base import State

    env = envs.get_environment(name, backend="spring")
    rng = np.random.default_rng(0)
    q = np.asarray(env.sys.init_q) + rng.uniform(-0.05, 0.05, (2 * _BATCH, env.sys.q_size()))
    angle = {"hopper": 0.3, "walker2d": 1.2}[name]  # beyond the healthy torso angle
    q[:, 2] = rng.uniform(-angle, angle, 2 * _BATCH)
    qd = rng.uniform(-0.5, 0.5, (2 * _BATCH, env.sys.qd_size()))

    def rollout(q, qd, key):
        def step(carry, key):
            pipeline_state, obs = carry
            action = jax.random.uniform(key, (env.action_size,), minval=-1, maxval=1)
            state = env.step(State(pipeline_state, obs, jnp.float32(0), jnp.float32(0)), action)
            return (state.pipeline_state, state.obs), (obs, action, state.obs, state.done)

        start = (env.pipeline_init(q, qd), jnp.zeros(_BRAX_OBS_SIZE[name], jnp.float32))
        return jax.lax.scan(step, start, jax.random.split(key, 3 * _STEPS))[1]

    keys = jax.random.split(jax.random.key(2), 2 * _BATCH)
    run = jax.jit(jax.vmap(rollout), compiler_options=_FAST_COMPILE)
    out = run(jnp.asarray(q, jnp.float32), jnp.asarray(qd, jnp.float32), keys)
    # Drop t = 0 (its obs is the placeholder), as for Playground.
    return tuple(np.asarray(x)[:, 1:].reshape(-1, *x.shape[2:]) for x in out)


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", known_names("playground"))
def test_playground_reward_matches_env(name):
    obs, action, next_obs, reward = _playground_transitions(name)
    reward_fn, termination_fn = known_functions("playground", name)
    assert termination_fn is None  # no DeepMind Control task terminates
    with jax.numpy_rank_promotion("raise"):  # usable where callers forbid rank promotion
        r = np.asarray(jax.jit(jax.vmap(jax.vmap(reward_fn)))(obs, action, next_obs))
    assert r.dtype == np.float32 and r.shape == reward.shape
    for kind, label in enumerate(("random", "near goal")):
        diff = np.max(np.abs(r[kind] - reward[kind]))
        assert diff <= _REWARD_ATOL[name], f"{name} {label}: max |diff| {diff}"
    # The near-goal transitions do reach the rewarded region, where the tolerance matters.
    assert np.mean(reward[1] > 0.5) > 0.05, np.mean(reward[1] > 0.5)
    # Not jitted, one item: the same value (not for CheetahRun, whose MJX kinematics take
    # about 25 s op by op).
    if name == "CheetahRun":
        return
    i = int(np.argmax(reward[1]))
    np.testing.assert_allclose(
        reward_fn(obs[1, i], action[1, i], next_obs[1, i]), r[1, i], rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("name", known_names("brax"))
def test_brax_termination_matches_env(name):
    obs, action, next_obs, done = _brax_transitions(name)
    reward_fn, termination_fn = known_functions("brax", name)
    assert reward_fn is None  # the forward reward needs x positions the obs drops
    t = np.asarray(jax.jit(jax.vmap(termination_fn))(obs, action, next_obs))
    assert t.dtype == np.bool_
    np.testing.assert_array_equal(t, done > 0.5)
    assert 0.1 < np.mean(t) < 0.9  # both healthy and fallen transitions were checked


@pytest.mark.parametrize(
    ("name", "z_bounds", "angle_bound"),
    [("hopper", (0.7, None), 0.2), ("walker2d", (0.8, 2.0), 1.0)],
)
def test_brax_termination_boundaries(name, z_bounds, angle_bound):
    """The healthy ranges are open intervals: a state exactly on a bound is unhealthy."""
    _, termination_fn = known_functions("brax", name)
    healthy = np.zeros(_BRAX_OBS_SIZE[name], np.float32)
    healthy[0] = 1.2

    def done(z=1.2, angle=0.0, other=0.0):
        o = healthy.copy()
        o[0], o[1], o[2] = z, angle, other
        return bool(termination_fn(o, np.zeros(3, np.float32), jnp.asarray(o)))

    assert not done()
    assert done(z=z_bounds[0]) and not done(z=np.nextafter(np.float32(z_bounds[0]), 2))
    if z_bounds[1] is not None:
        assert done(z=z_bounds[1])
    assert done(angle=angle_bound) and done(angle=-angle_bound)
    assert not done(angle=np.nextafter(np.float32(angle_bound), 0))
    assert done(other=100.0) == (name == "hopper")  # hopper also bounds the state by 100


def test_tolerance_equals_playground():
    reward = pytest.importorskip("mujoco_playground._src.reward")
    x = jnp.linspace(-25.0, 25.0, 20001, dtype=jnp.float32)
    cases = [
        dict(bounds=(-0.25, 0.25)),
        dict(margin=2.0),
        dict(margin=1.0, value_at_margin=0.0, sigmoid="quadratic"),
        dict(bounds=(10.0, float("inf")), margin=10.0, value_at_margin=0.0, sigmoid="linear"),
        dict(bounds=(1.0, float("inf")), margin=0.5, value_at_margin=0.5, sigmoid="linear"),
        dict(bounds=(0.0, 0.06)),
    ]
    for kwargs in cases:
        np.testing.assert_array_equal(_tolerance(x, **kwargs), reward.tolerance(x, **kwargs))


def test_unknown_names_have_no_known_functions():
    assert known_functions("playground", "HumanoidRun") == (None, None)
    assert known_functions("playground", "WalkerWalk") == (None, None)
    assert known_functions("brax", "halfcheetah") == (None, None)
    assert known_functions("gymnax", "CartpoleSwingup") == (None, None)
    assert known_names("gymnax") == ()
