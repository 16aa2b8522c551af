import jax
import numpy as np

from jaxmbrl import envs, mpc

for name in [
    "Pendulum-v1",
    "MountainCarContinuous-v0",
    "PointRobot-misc",
    "Reacher-misc",
    "Swimmer-misc",
]:
    spec, env = envs.load(name)
    T = spec.episode_length
    rand = mpc.random_planner(env.sample_action)
    one = lambda k: (
        mpc.episode(
            env, rand, None, jax.random.fold_in(k, 1), jax.random.split(k, T)
        ).episode_return
    )
    r = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(123), 100)))
    print(
        f"{name}: random policy return over 100 episodes: mean {r.mean():.2f} (std {r.std():.2f}, se {r.std() / 10:.2f}), T={T}"
    )
