"""User environments (``module:function`` form) that emit non-finite observations.

``make``: Pendulum-v1 whose observation is NaN at step 5 of every episode (one bad
observation spoils two transitions: the one it ends and the one it starts) and whose reward
is +inf on the transition into step 8 (one more bad transition): 3 bad transitions per
episode. ``make_all_bad``: every observation NaN.
"""

import jax.numpy as jnp
from gymnax.environments.classic_control.pendulum import Pendulum

BAD_STEP = 5
INF_REWARD_STEP = 8


class NaNPendulum(Pendulum):
    def __init__(self, all_bad: bool = False):
        super().__init__()
        self.all_bad = all_bad

    def _obs(self, obs, state):
        return jnp.where(self.all_bad | (state.time == BAD_STEP), jnp.nan, obs)

    def reset_env(self, key, params):
        obs, state = super().reset_env(key, params)
        return self._obs(obs, state), state

    def step_env(self, key, state, action, params):
        obs, state, reward, done, info = super().step_env(key, state, action, params)
        reward = jnp.where(state.time == INF_REWARD_STEP, jnp.inf, reward)
        return self._obs(obs, state), state, reward, done, info


def make():
    env = NaNPendulum()
    return env, env.default_params


def make_all_bad():
    env = NaNPendulum(all_bad=True)
    return env, env.default_params
