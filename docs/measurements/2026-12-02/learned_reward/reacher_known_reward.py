"""Reacher-misc with its reward known, to tell the dynamics model's share of the learned-reward
failure from the reward model's.

gymnax's Reacher-misc (2 links of length 1, absolute link angles) observes
``[cos a1, cos a2, sin a1, sin a2, v1, v2, goal_x, goal_y]`` and pays
``exp(-|fingertip - goal|**2)`` with ``fingertip = (cos a1 + cos a2, sin a1 + sin a2)`` of the
*next* state, so the reward is an exact function of the next observation. This script registers
that function as Reacher-misc's known reward, for this process only, and runs
``benchmarks/tune_pets.py`` with the arguments given, so a ``learned=0`` variant plans with the
true reward on the learned dynamics and a ``learned=1`` variant learns both, from the same
seeds::

    python docs/measurements/2026-12-02/learned_reward/reacher_known_reward.py --env Reacher-misc \
        --seeds 10 --episodes 8 --oracle --out runs/reacher "known:learned=0" "learned:learned=1"
"""

import pathlib
import sys

import jax.numpy as jnp

from jaxmbrl.envs import reward_fns

ROOT = pathlib.Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "benchmarks"))
import tune_pets  # noqa: E402


def _reacher(params):
    del params

    def reward(obs, action, next_obs):
        del obs, action
        tip_x = next_obs[0] + next_obs[1]
        tip_y = next_obs[2] + next_obs[3]
        return jnp.exp(-((tip_x - next_obs[6]) ** 2 + (tip_y - next_obs[7]) ** 2))

    return reward, None


if __name__ == "__main__":
    reward_fns._KNOWN["Reacher-misc"] = _reacher
    sys.exit(tune_pets.main(sys.argv[1:]))
