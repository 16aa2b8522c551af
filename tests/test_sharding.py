"""Sharding: seeds and candidates split over devices give the one-device results.

The multi-device checks need ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before
jax starts, so they run in one subprocess (jax starts once; its checks print one JSON line
that the tests below read). The single-device checks run in this process.
"""

import json
import os
import subprocess
import sys
import textwrap
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import sharding as shd

# Runs with 4 forced CPU devices; prints one JSON line of results.
MULTI_DEVICE_SCRIPT = textwrap.dedent(
    """
    import dataclasses, functools, json
    import jax, jax.numpy as jnp, numpy as np
    from jaxmbrl import sharding as shd
    from jaxmbrl.agents.pets import PETSConfig, make_pets
    from jaxmbrl.envs import make
    from jaxmbrl.envs.reward_fns import known_functions
    from jaxmbrl.models import ModelSpec
    from jaxmbrl.models import ensemble as ens
    from jaxmbrl.models.training import TrainConfig
    from jaxmbrl.planners.cem import CEMConfig, cem
    from jaxmbrl.planners.registry import PlannerSpec
    from jaxmbrl.rollouts import RolloutConfig, make_particle_objective

    out = {"num_devices": jax.device_count()}
    host0 = jax.devices()[0]

    def on_one_device(tree):
        return jax.device_put(tree, host0)

    def max_rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-6)))

    # 1. PETS: 4 seeds sharded over a 4-device "seeds" mesh vs the same on one device.
    TINY = PETSConfig(
        num_episodes=2, episode_length=12,
        planner=PlannerSpec("cem", horizon=6, options={
            "num_samples": 32, "num_elites": 4, "num_iterations": 2, "alpha": 0.1}),
        rollout=RolloutConfig(num_particles=4),
        model=ModelSpec(num_members=3, num_elites=2, hidden_sizes=(32, 32)),
        train=TrainConfig(max_epochs=4),
    )
    pets = make_pets(TINY)
    init = jax.jit(jax.vmap(pets.init))
    random_episode = jax.jit(jax.vmap(pets.random_episode))
    train_model = jax.jit(jax.vmap(pets.train_model))
    planned_episode = jax.jit(jax.vmap(pets.planned_episode))
    keys = jax.vmap(jax.random.key)(jnp.arange(4, dtype=jnp.uint32))
    state0 = init(keys, jnp.arange(4, dtype=jnp.int32))

    def pets_loop(state):
        state, random_stats = random_episode(state)
        state, log = train_model(state)
        state, stats = planned_episode(state)
        return state, random_stats.episode_return, log.val_error, stats.episode_return

    mesh = shd.seed_mesh()
    sharded = pets_loop(shd.shard_leading_axis(state0, mesh))
    single = pets_loop(on_one_device(state0))
    out["pets"] = {
        "random_rel": max_rel(sharded[1], single[1]),
        "val_error_rel": max_rel(sharded[2], single[2]),
        "planned_rel": max_rel(sharded[3], single[3]),
        "planned_returns": np.asarray(sharded[3]).tolist(),
        "returns_shards": shd.num_shards(sharded[3]),
        "state_shards": sorted({shd.num_shards(x) for x in jax.tree.leaves(sharded[0])}),
        "single_shards": shd.num_shards(single[3]),
        "seeds_differ": len(set(np.round(np.asarray(sharded[3]), 3).tolist())) > 1,
    }

    # A particle objective through a small ensemble, from any observation [3] (Pendulum).
    env, env_params = make("Pendulum-v1")
    reward_fn, _ = known_functions("Pendulum-v1", env_params)
    mc = ens.EnsembleConfig(obs_dim=3, action_dim=1, num_members=3, num_elites=2,
                            hidden_sizes=(16, 16))
    model = ens.init(mc, jax.random.key(1))
    rollout = RolloutConfig(num_particles=4, propagation="ts1")

    def objective_for(obs):
        grouped = functools.partial(ens.predict_grouped, mc, model)
        return make_particle_objective(rollout, grouped, obs, num_members=2,
                                       reward_fn=reward_fn)

    # 2. CEM with the candidate axis sharded over 4 devices vs unsharded.
    cmesh = shd.device_mesh("candidates")
    obs = jnp.array([-0.8, 0.6, 0.5])
    planner = cem(CEMConfig(horizon=6, action_low=[-2.0], action_high=[2.0],
                            num_samples=32, num_elites=4, num_iterations=3))

    def plan(key, wrap):
        objective = wrap(objective_for(obs))
        action, _, info = planner.plan(planner.init(), key, objective)
        return action, info.expected_return

    key = jax.random.key(7)
    a_plain, e_plain = jax.jit(functools.partial(plan, wrap=lambda o: o))(key)
    a_shard, e_shard = jax.jit(
        functools.partial(plan, wrap=lambda o: shd.shard_candidates(o, cmesh)))(key)
    # The objective alone, with N = 30 not a multiple of 4 (XLA pads the last shard): the
    # scores come back split over the devices and equal the unsharded ones.
    acts = jax.random.uniform(jax.random.key(30), (30, 6, 1), minval=-2.0, maxval=2.0)
    plain = jax.jit(objective_for(obs))(key, acts)
    split = jax.jit(shd.shard_candidates(objective_for(obs), cmesh))(key, acts)
    out["cem"] = {
        "action_sharded": np.asarray(a_shard).tolist(),
        "action_plain": np.asarray(a_plain).tolist(),
        "expected_rel": max_rel(e_shard, e_plain),
        "scores_rel_30": max_rel(split, plain), "scores_shards_30": shd.num_shards(split),
    }

    # 3. jit(vmap(plan)) over 8 independent planners (observations) sharded over 4 devices.
    obs8 = jax.random.uniform(jax.random.key(3), (8, 3), minval=-1.0, maxval=1.0)
    keys8 = jax.random.split(jax.random.key(4), 8)

    def plan_one(obs, key):
        action, _, info = planner.plan(planner.init(), key, objective_for(obs))
        return action, info.expected_return

    batched = jax.jit(jax.vmap(plan_one))
    a8_shard, e8_shard = batched(*shd.shard_leading_axis((obs8, keys8), mesh))
    a8_plain, e8_plain = batched(*on_one_device((obs8, keys8)))
    # The same 8 planners on a 2 x 2 mesh: planners over "seeds" (vmap's spmd_axis_name),
    # each planner's candidates over "candidates".
    mesh2d = jax.sharding.Mesh(np.array(jax.devices()).reshape(2, 2), ("seeds", "candidates"))

    def plan_one_2d(obs, key):
        objective = shd.shard_candidates(objective_for(obs), mesh2d)
        action, _, info = planner.plan(planner.init(), key, objective)
        return action, info.expected_return

    a8_2d, e8_2d = jax.jit(jax.vmap(plan_one_2d, spmd_axis_name="seeds"))(
        *shd.shard_leading_axis((obs8, keys8), mesh2d))
    # 4. The oneDNN layer (no sharding rule) in a sharded program: gathered, same numbers.
    from jaxmbrl import onednn
    out["onednn"] = None
    if onednn.available():
        # bfloat16 where oneDNN has a bfloat16 matmul (AVX-512), else float32
        dtype = "bfloat16" if onednn.runs("bfloat16") else "float32"
        cfg = ens.EnsembleConfig(obs_dim=3, action_dim=1, num_members=3, num_elites=2,
                                 hidden_sizes=(16,), matmul_dtype=dtype)
        dnn = dataclasses.replace(cfg, dense_library="onednn")
        params = ens.init(cfg, jax.random.key(3))
        o = jax.random.normal(jax.random.key(4), (2, 8, 3))
        a = jnp.ones((2, 8, 1))
        pred = lambda c: jax.jit(lambda o, a: ens.predict_grouped(c, params, o, a)[0])
        rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "seeds"))
        placed = [jax.device_put(x, rows) for x in (o, a)]
        out["onednn"] = {
            "dtype": dtype,
            "sharded_vs_xla": max_rel(pred(dnn)(*placed), pred(cfg)(*on_one_device((o, a)))),
            "sharded_vs_unsharded": max_rel(pred(dnn)(*placed), pred(dnn)(*on_one_device((o, a)))),
        }
    try:
        shd.shard_leading_axis({"obs": jnp.zeros((6, 3))}, mesh)
        out["indivisible_error"] = None
    except ValueError as e:
        out["indivisible_error"] = str(e)
    out["vmap_plan"] = {
        "actions_sharded": np.asarray(a8_shard).tolist(),
        "actions_plain": np.asarray(a8_plain).tolist(),
        "expected_rel": max_rel(e8_shard, e8_plain),
        "actions_2d": np.asarray(a8_2d).tolist(),
        "expected_rel_2d": max_rel(e8_2d, e8_plain),
        "shards": shd.num_shards(a8_shard),
        "plain_shards": shd.num_shards(a8_plain),
    }
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def multi_device():
    """Run :data:`MULTI_DEVICE_SCRIPT` once with 4 forced CPU devices; its JSON result."""
    # CPU devices even on a GPU machine: the forced device count applies to the host platform.
    # The caller's XLA_FLAGS (make test's compile level) kept, with the device count last.
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"
    env = {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", MULTI_DEVICE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["num_devices"] == 4
    return result


def test_pets_seeds_sharded_over_devices_equal_one_device(multi_device):
    r = multi_device["pets"]
    assert r["random_rel"] <= 1e-5
    assert r["val_error_rel"] <= 1e-4  # trained model: a few ulps may compound
    assert r["planned_rel"] <= 1e-5, r
    assert r["seeds_differ"]  # four different seeds, not four copies
    assert r["returns_shards"] == 4 and r["state_shards"] == [4]
    assert r["single_shards"] == 1


def test_cem_with_candidates_sharded_equals_unsharded(multi_device):
    r = multi_device["cem"]
    np.testing.assert_allclose(r["action_sharded"], r["action_plain"], rtol=1e-5, atol=1e-6)
    assert r["expected_rel"] <= 1e-5
    assert r["scores_rel_30"] <= 1e-5 and r["scores_shards_30"] == 4


def test_vmapped_planners_sharded_equal_unsharded(multi_device):
    r = multi_device["vmap_plan"]
    np.testing.assert_allclose(r["actions_sharded"], r["actions_plain"], rtol=1e-5, atol=1e-6)
    assert r["expected_rel"] <= 1e-5
    assert r["shards"] == 4 and r["plain_shards"] == 1
    # 2 x 2 mesh: planners over "seeds", each one's candidates over "candidates".
    np.testing.assert_allclose(r["actions_2d"], r["actions_plain"], rtol=1e-5, atol=1e-6)
    assert r["expected_rel_2d"] <= 1e-5


def test_onednn_layer_in_a_sharded_program_gives_the_same_numbers(multi_device):
    r = multi_device["onednn"]
    if r is None:
        assert os.environ.get("JAXMBRL_REQUIRE_ONEDNN") != "1", "the oneDNN layer is not built"
        pytest.skip("the oneDNN layer is not built")
    assert r["sharded_vs_unsharded"] == 0.0
    # another summation order; bfloat16 operands round the same values either way
    assert r["sharded_vs_xla"] < {"bfloat16": 2e-2, "float32": 1e-5}[r["dtype"]]


def test_indivisible_leading_axis_raises_on_four_devices(multi_device):
    msg = multi_device["indivisible_error"]
    assert msg is not None and "leading size 6 is not a multiple of 4" in msg


def _quadratic_objective(key, actions):
    """A quadratic score plus a small per-candidate random term (so the keys matter)."""
    noise = jax.vmap(lambda k: jax.random.normal(k, ()))(jax.random.split(key, actions.shape[0]))
    return -jnp.sum(jnp.square(actions - 0.5), axis=(1, 2)) + 0.01 * noise


def test_helpers_on_one_device():
    mesh = shd.seed_mesh()
    assert mesh.axis_names == ("seeds",) and mesh.size == jax.device_count()
    one = shd.seed_mesh(jax.devices()[:1])
    tree = {"x": jnp.arange(6.0).reshape(2, 3), "k": jax.random.split(jax.random.key(0), 2)}
    placed = shd.shard_leading_axis(tree, one)
    np.testing.assert_array_equal(placed["x"], tree["x"])
    assert placed["x"].sharding.spec == jax.sharding.PartitionSpec("seeds")
    assert shd.num_shards(placed["x"]) == 1
    assert jax.random.key_data(placed["k"]).shape == (2, 2)

    cmesh = shd.device_mesh("candidates", jax.devices()[:1])
    actions = jax.random.uniform(jax.random.key(1), (10, 4, 2))
    key = jax.random.key(2)
    wrapped = shd.shard_candidates(_quadratic_objective, cmesh)
    expected = _quadratic_objective(key, actions)
    np.testing.assert_allclose(jax.jit(wrapped)(key, actions), expected, rtol=1e-6)
    np.testing.assert_allclose(wrapped(key, actions), expected, rtol=1e-6)  # without jit
    batched = jax.jit(jax.vmap(wrapped))(jax.random.split(key, 3), jnp.stack([actions] * 3))
    assert batched.shape == (3, 10)


def test_errors_are_clear():
    mesh = shd.seed_mesh(jax.devices()[:1])
    with pytest.raises(ValueError, match="no axis 'candidates'"):
        shd.shard_candidates(_quadratic_objective, mesh)
    with pytest.raises(ValueError, match="scalar"):
        shd.shard_leading_axis({"a": jnp.zeros(())}, mesh)
    with pytest.raises(ValueError, match="at least one device"):
        shd.seed_mesh([])


def test_divisibility_error_names_the_leaf_and_sizes():
    # One device divides every size, so the message is checked here with a stand-in that has
    # a mesh's ``shape`` mapping (the check runs before any placement); the real 4-device
    # case runs in the subprocess.
    three_device_mesh = types.SimpleNamespace(shape={"seeds": 3})
    tree = {"obs": jnp.zeros((4, 2))}
    with pytest.raises(ValueError, match=r"\['obs'\] of shape \(4, 2\).*3 devices.*4 is not"):
        shd.shard_leading_axis(tree, three_device_mesh)
