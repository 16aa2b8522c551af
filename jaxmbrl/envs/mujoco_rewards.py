"""Known rewards and terminations of the MuJoCo families, on observations.

``known_functions(family, name)`` returns ``(reward_fn | None, termination_fn | None)`` for a
task of ``family`` (``"playground"`` or ``"brax"``) by its name in that family; ``(None, None)``
for anything else (use a learned reward, no termination). Each function handles one item:
``obs [O] float32``, ``action [A] float32``, ``next_obs [O] float32``; rewards are
``[] float32``, terminations ``[] bool``. They are pure JAX (``jit`` and ``vmap`` them).

Covered, with the largest ``|reward_fn(obs_t, a_t, obs_t+1) - s_t+1.reward|`` measured against
the environment itself (``impl="jax"``, float32, CPU; 6,368 random and 6,368 near-goal
transitions per task: spread start states with uniform actions, and starts with the pole
upright, the target at the finger, the cheetah at 6-14 m/s), and for terminations the
agreement with ``s_t+1.done`` (38,400 random-action transitions per task, 74 % / 85 % of them
fallen). ``tests/test_mujoco_rewards.py`` checks every row on smaller samples.

===================  =================================  ============  ============
family: task         reward reads                       random        near goal
===================  =================================  ============  ============
playground:
``CartpoleSwingup``  ``next_obs``, ``action[0]``        0             0
``CartpoleBalance``  ``next_obs``, ``action[0]``        0             0
``PendulumSwingup``  ``next_obs`` (pole ``zz``)         0             0
``ReacherEasy``      ``next_obs`` (finger to target)    0             0
``ReacherHard``      ``next_obs`` (finger to target)    0             0
``CheetahRun``       ``obs`` (see below)                1.2e-7        2.4e-7
brax (spring):
``hopper``           termination on ``next_obs``        100 % agree
``walker2d``         termination on ``next_obs``        100 % agree
===================  =================================  ============  ============

Cost under ``jit(vmap(...))`` on CPU: about 0.03 us per item, except ``CheetahRun`` (MJX
kinematics of 8 bodies, about 1.5 us per item).

Facts the functions rely on:

* Playground computes a step's reward on ``mjx.Data`` *after* the step, but ``mjx.step`` runs
  ``forward`` (kinematics, sensors) *before* integrating, so ``xmat``, ``geom_xpos`` and the
  sensors in that data belong to the state at the start of the last physics substep, while
  ``qpos``/``qvel`` are the integrated ones. The observations mix them the same way, so the
  rewards that read only what the observation reads (Cartpole, Pendulum, Reacher) are exact.
* ``CheetahRun`` rewards the torso's subtree (centre-of-mass) x-velocity, a sensor. With one
  physics substep per control step that sensor is computed from ``qpos_t, qvel_t``, which the
  *previous* observation carries in full (``qpos[1:]`` and ``qvel``; ``rootx`` does not change
  the velocity), so the reward is a function of ``obs``, not ``next_obs``. It is recomputed with
  MJX's own kinematics on the cheetah model with ``rootx = 0``: the only difference, float32
  rounding of positions and velocities (a few ulps of speeds up to ~15 m/s; the reward is
  ``speed / 10`` there), so the test tolerance is ``2e-6``. The others use ``1e-6``.

Left out, and why:

* ``WalkerWalk``, ``WalkerStand``, ``WalkerRun``: the stand term needs the torso height
  ``xpos[torso, z]``. Playground's walker observation has no height (its "height" entry is the
  torso's ``xmat zz``, i.e. uprightness), and positions cannot be integrated from velocities
  without the absolute start, so the reward is not a function of ``(obs, action, next_obs)``.
* Brax ``hopper`` and ``walker2d`` rewards: the forward term is
  ``(x_after - x_before) / dt`` of the torso, and the observation drops ``x``
  (``exclude_current_positions_from_observation=True``); ``qd[0]`` (clipped to ``[-10, 10]``) is
  the velocity at the end of the last of 4 substeps, not that mean, so no exact reward exists.
* Brax ``hopper``'s ``healthy_state_range`` also bounds the unclipped ``qd`` by 100; the
  observation clips ``qd`` to ``[-10, 10]``, so that part of the check cannot fire here (a
  hopper moving that fast is not a case the tests meet).

Tolerance: ``_tolerance`` re-implements ``mujoco_playground._src.reward.tolerance`` (a port of
dm_control's ``rewards.tolerance``) for the sigmoids used here, operation for operation, so
the cheap rewards need neither Playground's slow import (about 8 s) nor its private module.
The functions assume each environment's default constructor arguments.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.types import Array, RewardFn, TerminationFn

_Functions = tuple[RewardFn | None, TerminationFn | None]

_DEFAULT_VALUE_AT_MARGIN = 0.1


def _tolerance(
    x: Array,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = _DEFAULT_VALUE_AT_MARGIN,
) -> Array:
    """dm_control's ``tolerance``: 1 inside ``bounds``, a sigmoid falling to 0 outside.

    The same operations as ``mujoco_playground._src.reward.tolerance`` (so float32 results
    agree bit for bit), for the sigmoids this module uses: ``gaussian``, ``linear`` and
    ``quadratic``; with ``margin == 0`` an indicator of ``bounds``.

    Args:
      x: any shape, float32.
      bounds: inclusive ``(lower, upper)``, either may be infinite.
      margin: distance from the bounds at which the value is ``value_at_margin``; ``>= 0``.
      sigmoid: ``"gaussian"``, ``"linear"`` or ``"quadratic"``.
      value_at_margin: the value at distance ``margin``.

    Returns:
      The shape of ``x``, float32 in ``[0, 1]``.
    """
    lower, upper = bounds
    in_bounds = jnp.logical_and(lower <= x, x <= upper)
    if margin == 0:
        return jnp.where(in_bounds, 1.0, 0.0)
    d = jnp.where(x < lower, lower - x, x - upper) / margin
    if sigmoid == "gaussian":
        scale = jnp.sqrt(-2 * jnp.log(value_at_margin))
        value = jnp.exp(-0.5 * (d * scale) ** 2)
    elif sigmoid == "linear":
        scaled = d * (1 - value_at_margin)
        value = jnp.where(abs(scaled) < 1, 1 - scaled, 0.0)
    elif sigmoid == "quadratic":
        scaled = d * jnp.sqrt(1 - value_at_margin)
        value = jnp.where(abs(scaled) < 1, 1 - scaled**2, 0.0)
    else:
        raise ValueError(f"unsupported sigmoid {sigmoid!r}")
    return jnp.where(in_bounds, 1.0, value)


# --- MuJoCo Playground (DeepMind Control suite) -------------------------------------------


def _cartpole_dense() -> _Functions:
    """Cartpole (dense reward, one pole). ``obs [5]``: cart ``x``, pole ``cos``, pole ``sin``,
    cart velocity, pole angular velocity; ``action [1]``."""

    def reward(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs
        upright = (next_obs[1] + 1) / 2
        centered = (1 + _tolerance(next_obs[0], margin=2)) / 2
        small_control = _tolerance(action[0], margin=1, value_at_margin=0, sigmoid="quadratic")
        small_control = (4 + small_control) / 5
        small_velocity = (1 + _tolerance(next_obs[4:], margin=5).min()) / 2
        return (upright * centered * small_control * small_velocity).astype(jnp.float32)

    return reward, None


# cos(8 degrees) in float64, as pendulum.py's _COSINE_BOUND (compared in float32).
_PENDULUM_COSINE_BOUND = np.cos(np.deg2rad(8))


def _pendulum_swingup() -> _Functions:
    """Pendulum swing-up (sparse). ``obs [3]``: pole ``xz``, pole ``zz``, angular velocity."""

    def reward(obs: Array, action: Array, next_obs: Array) -> Array:
        del obs, action
        return _tolerance(next_obs[1], (_PENDULUM_COSINE_BOUND, 1)).astype(jnp.float32)

    return reward, None


_REACHER_FINGER_SIZE = 0.01  # reacher.xml, geom "finger"


def _reacher(target_size: float) -> Callable[[], _Functions]:
    """Reacher (sparse). ``obs [6]``: two joint angles, finger-to-target ``(dx, dy)``, two
    joint velocities. Reward 1 when the finger touches the target (distance at most the sum
    of the two radii, summed in float64 as reacher.py does)."""
    radii = np.float64(target_size) + np.float64(_REACHER_FINGER_SIZE)

    def make() -> _Functions:
        def reward(obs: Array, action: Array, next_obs: Array) -> Array:
            del obs, action
            distance = jnp.linalg.norm(next_obs[2:4])
            return _tolerance(distance, (0, radii)).astype(jnp.float32)

        return reward, None

    return make


_CHEETAH_RUN_SPEED = 10.0


def _cheetah_run() -> _Functions:
    """Cheetah run. ``obs [17]``: ``qpos[1:]`` (8: rootz, rooty, six joints), ``qvel`` (9).

    The reward of the step out of ``obs`` is the tolerance of the torso's subtree x-velocity
    at ``obs``'s state (see the module docstring), recomputed with MJX on the cheetah model.
    Needs ``mujoco_playground`` (for the model) and ``mujoco.mjx``; imported here, lazily.
    """
    from mujoco import mjx
    from mujoco_playground import registry

    env = registry.load("CheetahRun", config_overrides={"impl": "jax"})
    model = env.mjx_model
    empty = mjx.make_data(env.mj_model, impl="jax")
    sensor = env.mj_model.sensor("torso_subtreelinvel")
    x_adr = int(sensor.adr[0])  # the x component

    def speed(obs: Array) -> Array:
        obs = jnp.asarray(obs)  # MJX treats NumPy arrays as static model constants
        qpos = jnp.concatenate([jnp.zeros((1,), obs.dtype), obs[:8]])  # rootx = 0
        data = empty.replace(qpos=qpos, qvel=obs[8:17])
        with jax.numpy_rank_promotion("allow"):  # MJX broadcasts ranks; callers may forbid it
            data = mjx.kinematics(model, data)
            data = mjx.com_pos(model, data)
            data = mjx.com_vel(model, data)
            data = mjx.sensor_vel(model, data)
        return data.sensordata[x_adr]

    def reward(obs: Array, action: Array, next_obs: Array) -> Array:
        del action, next_obs
        return _tolerance(
            speed(obs),
            bounds=(_CHEETAH_RUN_SPEED, float("inf")),
            margin=_CHEETAH_RUN_SPEED,
            value_at_margin=0,
            sigmoid="linear",
        ).astype(jnp.float32)

    return reward, None


_PLAYGROUND: dict[str, Callable[[], _Functions]] = {
    "CartpoleSwingup": _cartpole_dense,
    "CartpoleBalance": _cartpole_dense,
    "PendulumSwingup": _pendulum_swingup,
    "ReacherEasy": _reacher(0.05),  # reacher.BIG_TARGET
    "ReacherHard": _reacher(0.015),  # reacher.SMALL_TARGET
    "CheetahRun": _cheetah_run,
}


# --- Brax ---------------------------------------------------------------------------------


def _brax_unhealthy(
    z_range: tuple[float, float],
    angle_range: tuple[float, float],
    state_range: tuple[float, float] | None,
) -> Callable[[], _Functions]:
    """Termination of brax's hopper / walker2d: not healthy after the step.

    ``next_obs [O]``: torso height ``z``, ``q[2:]`` (torso angle first), ``clip(qd, -10, 10)``.
    Healthy means ``z`` and the torso angle strictly inside their ranges and, where
    ``state_range`` is given (hopper), every entry of ``next_obs[1:]`` strictly inside it.
    """

    def make() -> _Functions:
        def termination(obs: Array, action: Array, next_obs: Array) -> Array:
            del obs, action
            z, angle = next_obs[0], next_obs[1]
            healthy = (z_range[0] < z) & (z < z_range[1])
            healthy &= (angle_range[0] < angle) & (angle < angle_range[1])
            if state_range is not None:
                state = next_obs[1:]
                healthy &= jnp.all((state_range[0] < state) & (state < state_range[1]))
            return jnp.logical_not(healthy)

        return None, termination

    return make


_BRAX: dict[str, Callable[[], _Functions]] = {
    "hopper": _brax_unhealthy((0.7, float("inf")), (-0.2, 0.2), (-100.0, 100.0)),
    "walker2d": _brax_unhealthy((0.8, 2.0), (-1.0, 1.0), None),
}

_FAMILIES = {"playground": _PLAYGROUND, "brax": _BRAX}


def known_names(family: str) -> tuple[str, ...]:
    """The tasks of ``family`` with a known reward or termination (empty for other families)."""
    return tuple(sorted(_FAMILIES.get(family, {})))


def known_functions(family: str, name: str) -> tuple[RewardFn | None, TerminationFn | None]:
    """The task's known reward and termination on observations, or ``(None, None)``.

    Args:
      family: ``"playground"`` or ``"brax"``.
      name: the task's name in that family (``"CheetahRun"``, ``"hopper"``).

    Returns:
      ``(reward_fn, termination_fn)``: ``reward_fn(obs [O], action [A], next_obs [O]) -> []
      float32`` or ``None`` (learn the reward), ``termination_fn(obs, action, next_obs) -> []
      bool`` or ``None`` (never terminates, as every DeepMind Control task). ``CheetahRun``
      loads its model through ``mujoco_playground`` on this call.
    """
    make = _FAMILIES.get(family, {}).get(name)
    if make is None:
        return None, None
    return make()
