import jax
import numpy as np

from jaxmbrl import envs, mpc
from jaxmbrl.models import training
from jaxmbrl.models.spec import ModelSpec

spec, env = envs.load("Reacher-misc")
T = spec.episode_length
rand = mpc.random_planner(env.sample_action)
one = lambda k: mpc.episode(env, rand, None, jax.random.fold_in(k, 1), jax.random.split(k, T))
recs = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 4))
f = lambda x: np.asarray(x).reshape(4 * T, -1)
obs, act, nxt = f(recs.observations), f(recs.actions), f(recs.next_observations)
mc = ModelSpec(num_members=5, num_elites=3, hidden_sizes=(64, 64)).ensemble(
    obs_dim=8, action_dim=2, learn_reward=False
)
tc = training.TrainConfig(max_epochs=1000, max_steps=2000, patience=30, learning_rate=1e-3)
mask1 = np.arange(4 * T) < T
st1, l1 = training.train(mc, tc, jax.random.key(1), None, obs, act, nxt, mask=mask1)
print("call1 val", np.asarray(l1.val_error).round(4))
for name, tcx in [
    ("refit", tc),
    (
        "norefit",
        training.TrainConfig(
            max_epochs=1000, max_steps=2000, patience=30, learning_rate=1e-3, refit_normalizer=False
        ),
    ),
]:
    st2, l2 = training.train(
        mc, tcx, jax.random.key(2), st1, obs, act, nxt, mask=np.arange(4 * T) < 3 * T
    )
    print(
        name,
        "warm call2 init",
        np.asarray(l2.initial_val_error).round(3),
        "final",
        np.asarray(l2.val_error).round(4),
        "epochs",
        int(l2.num_epochs),
        "best_epoch",
        np.asarray(l2.best_epoch),
    )
st3, l3 = training.train(
    mc, tc, jax.random.key(2), None, obs, act, nxt, mask=np.arange(4 * T) < 3 * T
)
print("scratch call2 final", np.asarray(l3.val_error).round(4), "epochs", int(l3.num_epochs))
