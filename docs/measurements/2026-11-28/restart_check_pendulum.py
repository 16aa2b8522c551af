import sys

import jax
import numpy as np

sys.path.insert(0, "benchmarks")
from bench_train_schedule import collect

from jaxmbrl import envs
from jaxmbrl.models import training
from jaxmbrl.models.spec import ModelSpec

spec, env = envs.load("Pendulum-v1")
data = collect(env, spec, jax.random.split(jax.random.key(0), 11))
mc = ModelSpec(num_members=5, num_elites=3, hidden_sizes=(64, 64)).ensemble(
    obs_dim=3, action_dim=1, learn_reward=False
)
tc = training.TrainConfig(
    max_epochs=1000, max_steps=500, patience=30, learning_rate=1e-3, restart_above=0.25
)
st = None
for k in range(1, 11):
    mask = np.arange(2200) < (k + 1) * 200
    st, log = training.train(
        mc, tc, jax.random.key(k), st, data["obs"], data["action"], data["next_obs"], mask=mask
    )
    print(
        k,
        "init",
        np.asarray(log.initial_val_error).round(4),
        "restarted",
        np.asarray(log.restarted).astype(int),
        "final",
        np.asarray(log.val_error).round(5),
    )
