"""The lesson's 1-D point mass as a gymnax environment.

State = position ``x``, action = force ``u`` in ``[-1, 1]``; the true dynamics are
``x' = x + gain * u`` with ``gain = 0.1`` (the lesson's "Worked example"). The reward is minus
the distance to the goal after the step, ``r = -|x' - goal|``. There is no natural
termination; episodes are truncated after ``max_steps_in_episode`` steps.

``gain`` is a parameter, so the lesson's biased model (``x' = x + 0.05 u``) is this same
environment with ``EnvParams(gain=0.05)``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class EnvState(environment.EnvState):
    """Point-mass state: ``x`` ``[] float32`` position, ``time`` ``[] int32`` step count."""

    x: jax.Array
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Point-mass parameters (a dynamic pytree, so they can be vmapped).

    Attributes:
      gain: the effect of a unit force per step (0.1 in the lesson).
      goal: the target position.
      start_low, start_high: the start position is uniform in this interval.
      max_steps_in_episode: truncation length.
    """

    gain: float = 0.1
    goal: float = 0.5
    start_low: float = 0.0
    start_high: float = 0.0
    max_steps_in_episode: int = 50


class PointMass(environment.Environment[EnvState, EnvParams]):
    """gymnax-compatible 1-D point mass; observations are ``[1] float32`` (the position)."""

    def __init__(self):
        super().__init__()
        self.obs_shape = (1,)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def step_env(
        self, key: jax.Array, state: EnvState, action: Any, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        """One transition; ``action`` is ``[1]`` or ``[]``, clipped to ``[-1, 1]``."""
        del key
        u = jnp.clip(jnp.reshape(jnp.asarray(action, jnp.float32), ()), -1.0, 1.0)
        x = state.x + params.gain * u
        reward = -jnp.abs(x - params.goal)
        state = EnvState(x=x, time=state.time + 1)
        done = self.is_terminal(state, params)
        return self.get_obs(state), state, reward, done, {"discount": self.discount(state, params)}

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        x = jax.random.uniform(key, (), jnp.float32, params.start_low, params.start_high)
        state = EnvState(x=x, time=0)
        return self.get_obs(state), state

    def get_obs(self, state: EnvState, params=None, key=None) -> jax.Array:
        return jnp.reshape(state.x, (1,)).astype(jnp.float32)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return jnp.array(False)

    @property
    def name(self) -> str:
        return "PointMass-v0"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=jnp.float32)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        big = jnp.finfo(jnp.float32).max
        return spaces.Box(-big, big, shape=(1,), dtype=jnp.float32)


def reward_fn(goal: float | jax.Array):
    """The point mass's known reward as ``(obs [1], action [1], next_obs [1]) -> []``."""

    def reward(obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        del obs, action
        return -jnp.abs(next_obs[0] - goal)

    return reward
