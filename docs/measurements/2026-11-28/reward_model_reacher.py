"""Reacher-misc: the reward as an output of the dynamics ensemble (joint, a function of
(obs, action)) against a separate ensemble r(obs, action, next_obs), on 9 random episodes
(20 % held out). Prints each one's normalised validation error of the reward."""

import time

import jax
import numpy as np

from jaxmbrl import envs, mpc
from jaxmbrl.models import training
from jaxmbrl.models.spec import ModelSpec

spec, env = envs.load("Reacher-misc")
T = spec.episode_length
rand = mpc.random_planner(env.sample_action)


def one(k):
    return mpc.episode(env, rand, None, jax.random.fold_in(k, 1), jax.random.split(k, T))


recs = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 9))


def flat(x):
    return np.asarray(x).reshape(9 * T, -1)


obs, act, nxt = flat(recs.observations), flat(recs.actions), flat(recs.next_observations)
rew = np.asarray(recs.rewards).reshape(-1)
both = np.concatenate([obs, nxt], 1)
runs = [
    ("joint 3x128, 1000 epochs", (128, 128, 128), False, None),
    ("separate 2x64, 500 steps", (64, 64), True, 500),
    ("separate 2x64, 2000 steps", (64, 64), True, 2000),
]
for name, hidden, separate, steps in runs:
    spec_ = ModelSpec(num_members=5, num_elites=3, hidden_sizes=hidden, deterministic=separate)
    odim = 2 * spec.obs_dim if separate else spec.obs_dim
    mc = spec_.ensemble(obs_dim=odim, action_dim=spec.action.model_dim, learn_reward=True)
    patience = 1000 if steps and steps > 500 else 30
    tc = training.TrainConfig(
        max_epochs=1000, max_steps=steps, patience=patience, learning_rate=1e-3
    )
    t0 = time.perf_counter()
    if separate:
        st, log = training.train(mc, tc, jax.random.key(1), None, both, act, both, rew)
    else:
        st, log = training.train(mc, tc, jax.random.key(1), None, obs, act, nxt, rew)
    err = np.asarray(log.val_output_error)[np.asarray(st.elite_idx)].mean(0)[-1]
    print(f"{name}: {time.perf_counter() - t0:.1f} s, reward validation error {err:.4f}")
