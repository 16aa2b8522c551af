"""Tests of jaxmbrl.rollouts: particle objectives (TS1, TS-inf, expectation) and the oracle."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import envs
from jaxmbrl.envs.gymnax_adapter import gymnax_termination, oracle_objective
from jaxmbrl.models import ensemble
from jaxmbrl.planners import RandomShootingConfig, random_shooting
from jaxmbrl.rollouts import (
    RolloutConfig,
    _random_permutations,
    make_objective,
    make_particle_objective,
    risk_score,
)

GAINS = (1.0, 2.0)  # member k of the fake model: next = obs + GAINS[k] * action


def gain_model(gains, var=0.0, reward_scale=None):
    """A fake grouped model: member ``k`` predicts ``delta = gains[k] * action`` (1-D obs).

    With ``reward_scale`` the model also outputs a reward ``reward_scale * obs`` (``Y = 2``).
    """
    g = jnp.asarray(gains, jnp.float32)

    def model(obs, action):  # [K, R, 1], [K, R, 1]
        k = obs.shape[0]
        delta = g[:k, None, None] * action
        out = delta if reward_scale is None else jnp.concatenate([delta, reward_scale * obs], -1)
        return out, jnp.full(out.shape, var, jnp.float32)

    return model


def square_reward(obs, action, next_obs):
    del obs, action
    return next_obs[0] ** 2


def identity_reward(obs, action, next_obs):
    del obs, action
    return next_obs[0]


def objective_for(config, gains=GAINS, obs=(0.0,), **kw):
    kw.setdefault("reward_fn", square_reward)
    return make_particle_objective(
        config, kw.pop("model", gain_model(gains)), jnp.asarray(obs), num_members=len(gains), **kw
    )


@pytest.mark.parametrize("jit", [False, True])
def test_tsinf_hand_computed(jit):
    # obs 0, actions 1, H 2, reward next_obs**2. Member 0: x = 1, 2 -> 1 + 4 = 5;
    # member 1: x = 2, 4 -> 4 + 16 = 20. TS-inf, P 2: particle p on member p % 2 -> 12.5.
    f = objective_for(RolloutConfig(num_particles=2, propagation="tsinf"))
    f = jax.jit(f) if jit else f
    out = f(jax.random.key(0), jnp.ones((3, 2, 1)))
    np.testing.assert_array_equal(out, np.full(3, 12.5, np.float32))


def test_tsinf_uneven_particles_use_ghost_slots():
    # P 3, K 2: particles on members 0, 1, 0 -> (5 + 20 + 5) / 3.
    f = objective_for(RolloutConfig(num_particles=3, propagation="tsinf"))
    out = f(jax.random.key(0), jnp.ones((2, 2, 1)))
    np.testing.assert_allclose(out, np.full(2, 10.0), rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_expectation_hand_computed(jit):
    # mean gain 1.5: x = 1.5, 3 -> 2.25 + 9 = 11.25 (differs from TS-inf's 12.5).
    f = objective_for(RolloutConfig(num_particles=5, propagation="expectation"))
    f = jax.jit(f) if jit else f
    out = f(jax.random.key(0), jnp.ones((4, 2, 1)))
    np.testing.assert_array_equal(out, np.full(4, 11.25, np.float32))


def test_ts1_reassigns_members_across_steps():
    # P 2, K 2: each step one particle per member. Member sequences (1,1),(2,2) give
    # (5 + 20) / 2 = 12.5; the swapped pair (1,2),(2,1) gives (10 + 13) / 2 = 11.5, which
    # TS-inf can never produce. With a uniform shuffle each happens half the time.
    f = jax.jit(objective_for(RolloutConfig(num_particles=2, propagation="ts1")))
    out = np.asarray(f(jax.random.key(1), jnp.ones((2000, 2, 1))))
    assert set(np.unique(out)) <= {np.float32(12.5), np.float32(11.5)}
    frac_swapped = np.mean(out == np.float32(11.5))
    assert 0.45 < frac_swapped < 0.55


def test_ts1_member_marginal_is_uniform_with_ghosts():
    # P 1, K 2 (one ghost slot): H 1, reward = next_obs = gain, so the score is the gain of
    # the member the particle went through: each member half of the time.
    f = jax.jit(
        objective_for(RolloutConfig(num_particles=1, propagation="ts1"), reward_fn=identity_reward)
    )
    out = np.asarray(f(jax.random.key(2), jnp.ones((4000, 1, 1))))
    assert set(np.unique(out)) == {np.float32(1.0), np.float32(2.0)}
    assert 0.46 < np.mean(out == 2.0) < 0.54


def test_learned_reward_output_is_used():
    # reward = 3 * obs (the obs before the step): member 0 from x0 = 1: x = 1, 2 -> 3 + 6.
    model = gain_model((1.0,), reward_scale=3.0)
    f = make_particle_objective(
        RolloutConfig(num_particles=2, propagation="tsinf"), model, jnp.ones(1), num_members=1
    )
    np.testing.assert_array_equal(f(jax.random.key(0), jnp.ones((2, 2, 1))), [9.0, 9.0])


def test_model_noise_is_sampled():
    # mean 0, var 4, H 1, reward = next_obs: particle returns are 2 * eps.
    model = gain_model((0.0,), var=4.0)
    cfg = RolloutConfig(num_particles=2000, propagation="ts1", risk="mean_std", risk_lambda=1.0)
    f = make_particle_objective(cfg, model, jnp.zeros(1), num_members=1, reward_fn=identity_reward)
    out = float(f(jax.random.key(0), jnp.ones((1, 1, 1)))[0])
    assert abs(out + 2.0) < 0.2  # mean ~0, std ~2


def test_termination_and_gamma_exact():
    # gains (1, 0.5), reward next_obs, terminate once next_obs >= 2, gamma 0.5, H 4.
    # member 0: x = 1, 2 (terminates at step 2) -> 1 + 0.5 * 2 = 2.
    # member 1: x = 0.5, 1, 1.5, 2 -> 0.5 + 0.5 + 0.375 + 0.25 = 1.625. Mean 1.8125.
    def term(obs, action, next_obs):
        del obs, action
        return next_obs[0] >= 2.0

    cfg = RolloutConfig(num_particles=2, propagation="tsinf", gamma=0.5)
    f = objective_for(cfg, gains=(1.0, 0.5), reward_fn=identity_reward, termination_fn=term)
    np.testing.assert_allclose(f(jax.random.key(0), jnp.ones((1, 4, 1))), [1.8125], rtol=1e-6)
    # without termination: member 0 would add 0.25 * 3 + 0.125 * 4 = 1.25 more.
    g = objective_for(cfg, gains=(1.0, 0.5), reward_fn=identity_reward)
    np.testing.assert_allclose(g(jax.random.key(0), jnp.ones((1, 4, 1))), [2.4375], rtol=1e-6)


RISK_GAINS = (0.3, -1.2, 2.5, 0.7, -0.4, 1.9, 0.0, -2.2)


@pytest.mark.parametrize(
    "risk,lam,alpha", [("mean", 0.0, 0.1), ("mean_std", 0.7, 0.1), ("cvar", 0.0, 0.25)]
)
@pytest.mark.parametrize("num_particles", [8, 5])
def test_risk_scores_match_numpy(risk, lam, alpha, num_particles):
    # H 1, reward next_obs, TS-inf: particle p's return is RISK_GAINS[p % K].
    cfg = RolloutConfig(
        num_particles=num_particles,
        propagation="tsinf",
        risk=risk,
        risk_lambda=lam,
        cvar_alpha=alpha,
    )
    f = objective_for(cfg, gains=RISK_GAINS, reward_fn=identity_reward)
    out = np.asarray(f(jax.random.key(0), jnp.ones((2, 1, 1))))
    r = np.asarray(RISK_GAINS, np.float64)[np.arange(num_particles) % len(RISK_GAINS)]
    want = {
        "mean": r.mean(),
        "mean_std": r.mean() - lam * r.std(),
        "cvar": np.sort(r)[: math.ceil(alpha * num_particles)].mean(),
    }[risk]
    np.testing.assert_allclose(out, [want, want], rtol=1e-5, atol=1e-6)


def test_risk_score_direct_against_numpy():
    rng = np.random.default_rng(0)
    returns = rng.normal(size=(6, 20)).astype(np.float32)
    for cfg, want in [
        (RolloutConfig(risk="mean"), returns.mean(1)),
        (RolloutConfig(risk="mean_std", risk_lambda=0.5), returns.mean(1) - 0.5 * returns.std(1)),
        (RolloutConfig(risk="cvar", cvar_alpha=0.1), np.sort(returns, 1)[:, :2].mean(1)),
    ]:
        np.testing.assert_allclose(risk_score(cfg, jnp.asarray(returns)), want, rtol=1e-5)


def test_traced_risk_lambda_sweeps_in_one_vmap_and_equals_static_configs():
    model = gain_model((1.0, -0.5, 0.25), var=0.3)
    cfg = RolloutConfig(num_particles=6, propagation="tsinf", risk="mean_std")
    actions = jax.random.uniform(jax.random.key(3), (8, 3, 1), minval=-1, maxval=1)
    lams = jnp.array([0.0, 0.5, 2.0])

    def scores(lam, config=cfg):
        f = make_particle_objective(
            config, model, jnp.asarray([0.2]), num_members=3, reward_fn=square_reward,
            risk_lambda=lam,
        )  # fmt: skip
        return f(jax.random.key(4), actions)

    swept = jax.jit(jax.vmap(scores))(lams)
    for i, lam in enumerate([0.0, 0.5, 2.0]):
        static = dataclasses.replace(cfg, risk_lambda=lam)
        np.testing.assert_allclose(swept[i], scores(None, static), rtol=1e-5)
    assert not np.allclose(swept[0], swept[2])  # the penalty changes the scores
    with pytest.raises(ValueError, match="risk_lambda applies to risk='mean_std'"):
        scores(1.0, RolloutConfig(num_particles=6))


@pytest.mark.parametrize("propagation", ["ts1", "tsinf", "expectation"])
def test_chunked_equals_unchunked_to_rounding(propagation):
    # Every candidate draws the same randomness in any chunk; only XLA:CPU's code for the
    # arithmetic (its vectorisation, so its fused multiply-adds) depends on the chunk's size:
    # scores differed by up to 2.4e-7 (1 ulp) with the default LLVM level, none at -O0.
    model = gain_model((1.0, -0.5, 0.25), var=0.3)
    risk = "mean" if propagation == "expectation" else "mean_std"
    cfg = RolloutConfig(num_particles=4, propagation=propagation, risk=risk, risk_lambda=0.3)
    actions = jax.random.uniform(jax.random.key(3), (10, 3, 1), minval=-1, maxval=1)
    outs = []
    for chunk in (None, 3):  # 3 pads the last chunk (10 = 4 * 3 - 2)
        f = make_particle_objective(
            dataclasses.replace(cfg, chunk_size=chunk),
            model,
            jnp.asarray([0.2]),
            num_members=3,
            reward_fn=square_reward,
        )
        outs.append(np.asarray(jax.jit(f)(jax.random.key(4), actions)))
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("propagation", ["ts1", "tsinf", "expectation"])
def test_nan_model_scores_minus_inf_and_planner_stays_finite(propagation):
    def model(obs, action):  # NaN whenever the action is positive
        mean = jnp.where(action > 0, jnp.nan, action)
        return mean, jnp.zeros_like(mean)

    f = make_particle_objective(
        RolloutConfig(num_particles=4, propagation=propagation),
        model,
        jnp.zeros(1),
        num_members=2,
        reward_fn=identity_reward,
    )
    actions = jnp.stack([-jnp.ones((3, 1)), jnp.ones((3, 1)), jnp.zeros((3, 1))])
    out = np.asarray(f(jax.random.key(0), actions))
    assert out[1] == -np.inf
    assert np.all(np.isfinite(out[[0, 2]]))
    planner = random_shooting(
        RandomShootingConfig(horizon=3, action_low=[-1.0], action_high=[1.0], num_samples=16)
    )
    action, _, _ = jax.jit(lambda s, k: planner.plan(s, k, f))(planner.init(), jax.random.key(1))
    assert np.all(np.isfinite(action)) and float(action[0]) <= 0


def test_termination_ignores_nan_after_terminating():
    # state blows up to NaN after the particle terminated: no effect on the score.
    def model(obs, action):
        mean = jnp.where(obs > 0.5, jnp.nan, jnp.ones_like(obs))
        return mean, jnp.zeros_like(mean)

    def term(obs, action, next_obs):
        return next_obs[0] >= 1.0

    f = make_particle_objective(
        RolloutConfig(num_particles=2, propagation="tsinf"),
        model,
        jnp.zeros(1),
        num_members=2,
        reward_fn=identity_reward,
        termination_fn=term,
    )
    np.testing.assert_array_equal(f(jax.random.key(0), jnp.ones((1, 4, 1))), [1.0])


def test_objective_under_vmap_over_start_obs():
    cfg = RolloutConfig(num_particles=2, propagation="tsinf")
    batched = jax.vmap(lambda o: objective_for(cfg, obs=o)(jax.random.key(0), jnp.ones((2, 2, 1))))(
        jnp.asarray([[0.0], [1.0]])
    )
    # from x0 = 1: member 0: 4 + 9 = 13; member 1: 9 + 25 = 34 -> 23.5
    np.testing.assert_array_equal(batched, [[12.5, 12.5], [23.5, 23.5]])


def test_wrong_model_output_size_is_reported():
    f = make_particle_objective(
        RolloutConfig(num_particles=2), gain_model(GAINS), jnp.zeros(1), num_members=2
    )  # no reward_fn and no reward output
    with pytest.raises(ValueError, match="output size Y"):
        f(jax.random.key(0), jnp.ones((2, 2, 1)))


@pytest.mark.parametrize(
    "field,value",
    [
        ("num_particles", 0),
        ("propagation", "ts2"),
        ("gamma", 1.5),
        ("risk", "max"),
        ("risk_lambda", float("nan")),
        ("cvar_alpha", 0.0),
        ("chunk_size", 0),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        RolloutConfig(**{field: value})


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(propagation="expectation", risk="mean_std", risk_lambda=1.0),
        dict(propagation="expectation", risk="cvar"),
        dict(num_particles=1, propagation="ts1", risk="mean_std", risk_lambda=1.0),
    ],
)
def test_risk_measures_need_several_sampled_particles(kwargs):
    # With one particle the spread is 0 and the tail is the mean: refuse, do not ignore.
    with pytest.raises(ValueError, match="several sampled particles"):
        RolloutConfig(**kwargs)
    RolloutConfig(**dict(kwargs, risk="mean"))  # the same without a risk measure is fine


@pytest.mark.parametrize("slots", [1, 5, 20, 80])
def test_random_permutations_equal_argsort(slots):
    bits = jax.random.bits(jax.random.key(slots), (7, slots))
    np.testing.assert_array_equal(_random_permutations(bits), jnp.argsort(bits, axis=1))


def test_composes_with_the_ensemble_contract():
    cfg = ensemble.EnsembleConfig(
        obs_dim=3, action_dim=1, num_members=4, num_elites=3, hidden_sizes=(8,)
    )
    state = ensemble.init(cfg, jax.random.key(0))
    model = functools.partial(ensemble.predict_grouped, cfg, state)
    for prop in ("ts1", "expectation"):  # the two ways of grouping rows
        f = make_particle_objective(
            RolloutConfig(num_particles=4, propagation=prop),
            model,
            jnp.asarray([1.0, 0.0, 0.0]),
            num_members=cfg.num_elites,
            reward_fn=lambda o, a, n: -jnp.sum(n**2),
        )
        out = jax.jit(f)(jax.random.key(1), jnp.zeros((5, 4, 1)))
        assert out.shape == (5,) and out.dtype == jnp.float32


def test_oracle_objective_matches_make_objective_on_pendulum():
    env, params = envs.make("Pendulum-v1")
    _, state = env.reset_env(jax.random.key(0), params)
    actions = jax.random.uniform(jax.random.key(1), (7, 5, 1), minval=-2, maxval=2)
    want = make_objective(envs.true_dynamics(env), params, state)(jax.random.key(2), actions)
    got = oracle_objective(env, params, state, chunk_size=3)(jax.random.key(2), actions)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_oracle_termination_on_cartpole():
    env, params = envs.make("CartPole-v1")
    _, state = env.reset_env(jax.random.key(0), params)
    actions = jnp.zeros((1, 40), jnp.int32)  # always push left: falls within 40 steps
    # Python reference: reward 1 per step until (and including) the terminating one.
    s, total = state, 0.0
    for t in range(40):
        _, s, r, done, _ = env.step_env(jax.random.key(t), s, actions[0, t], params)
        total += float(r)
        if bool(done):
            break
    assert total < 40
    got = oracle_objective(env, params, state)(jax.random.key(0), actions)
    np.testing.assert_array_equal(got, [total])
    assert bool(gymnax_termination(env, params)(state, 0, s))
