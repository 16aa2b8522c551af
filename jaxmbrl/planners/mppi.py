"""Model predictive path integral control (MPPI; Williams et al.), after mbrl-lib.

Each iteration perturbs the current mean with time-correlated Gaussian noise, scores the
perturbed sequences, clipped to the bounds, and moves the mean to the softmax-weighted average
of the *unclipped* ones::

    n_t ~ N(0, sigma**2)                             # [N, H, A]
    u_t = beta * n_t + (1 - beta) * u_{t-1},  u_{-1} = 0   # low-pass filter over time
    raw = clip(mean + u, low - m * (high - low), high + m * (high - low))   # m = 0.25
    a   = clip(raw, low, high)                       # what the objective scores
    w   = softmax(returns(a) / temperature)          # [N]
    mean <- sum_n w_n * raw_n

The mean is thus an unconstrained *latent* mean: averaging ``raw`` rather than ``a`` lets it
reach and pass a bound (every candidate beyond it scores as the bound itself), so the returned
``clip(mean, low, high)`` can put actions exactly on the bounds; averaging the clipped actions
would only approach a bound as fast as the samples inside the bounds pull it there. ``raw`` is
clamped to the bounds widened by ``m = LATENT_MARGIN = 0.25`` of the range on each side, so
the latent mean (a convex combination of ``raw``) stays within that box too: it cannot run
away beyond a bound, where the objective is flat, within a call, and an overflowing
``sigma * u`` stays finite. The margin is a trade-off: every candidate in the flat band past a
bound scores as the bound, so with noise as wide as mbrl-lib's (``sigma = 1`` on ranges of
1.5 to 4) the band pulls the mean towards the bound even when the optimum is inside; measured
with ``benchmarks/bench_bounds.py`` (non-symmetric box, 15 keys, three calls), a margin of a
whole range made the error for optima inside the bounds 2.5 to 3.6 times that of the clipped
average, a margin of 0.25 about 1.5 times, while both reach optima on the bounds (``m = 0`` is
the average of the clipped actions). Every call starts from the stored, clipped solution.

``temperature`` is mbrl-lib's ``1 / gamma``; ``beta`` and ``sigma`` are mbrl-lib's. Where this
differs from ``mbrl.planning.MPPIOptimizer``, on purpose:

* mbrl-lib filters the *actions* (``a_t = beta * (mean_t + n_t) + (1 - beta) * a_{t-1}``,
  starting from the previous executed action), which centres the samples on a lagged copy of
  the mean, so the mean cannot settle on the optimum; here the filter acts on the noise, so
  the samples stay centred on the mean and a fixed point of the update is the optimum.
* mbrl-lib draws the noise from a truncated standard normal and never scales it by
  ``sigma`` (it computes a scaled copy and then overwrites it); here the noise is
  ``sigma * N(0, 1)``, and the actions are clipped to the bounds.
* mbrl-lib averages the actions it scored (kept inside the bounds by the truncation); here
  the mean averages the unclipped candidates ``raw`` (see above), so it can reach a bound.
* Non-finite returns become ``-inf`` (weight 0; mbrl-lib: ``-1e-10``); if no candidate has a
  finite return, the mean is left unchanged.
* mbrl-lib keeps the mean on ``self`` and starts from zeros; here it is the plan state, starting
  from the bounds' midpoint, and ``shift`` refills the last step with the midpoint (mbrl-lib
  repeats the last step).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxmbrl.planners.base import (
    ContinuousPlannerConfig,
    PlanInfo,
    Planner,
    clip_broadcast,
    evaluate,
    shift_sequence,
)
from jaxmbrl.types import Array, Objective, PRNGKey
from jaxmbrl.validation import check_positive_float, check_positive_int, check_range

# The latent mean and the candidates it averages stay within the bounds widened by this
# fraction of the range on each side (see the module docstring).
LATENT_MARGIN = 0.25


@dataclasses.dataclass(frozen=True)
class MPPIConfig(ContinuousPlannerConfig):
    """Configuration of :func:`mppi`; the defaults are mbrl-lib's ``mppi.yaml`` ones.

    Attributes:
      horizon: ``H`` (>= 1).
      action_low, action_high: ``A`` bounds each.
      num_samples: ``N``, candidates per iteration (>= 1; mbrl-lib 350).
      num_iterations: refinement iterations per planning call (>= 1; mbrl-lib 5).
      temperature: ``lambda > 0`` of the softmax weights; mbrl-lib's ``gamma = 0.9`` is
        ``temperature = 1 / 0.9``. Smaller is greedier.
      noise_sigma: ``sigma > 0``, the standard deviation of the noise before filtering, in
        action units, the same for every action dimension (mbrl-lib 1.0).
      beta: smoothing in ``(0, 1]``, the weight of the new noise in the low-pass filter;
        1 means white noise (mbrl-lib 0.9).
    """

    num_samples: int = 350
    num_iterations: int = 5
    temperature: float = 1 / 0.9
    noise_sigma: float = 1.0
    beta: float = 0.9

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("num_samples", self.num_samples)
        check_positive_int("num_iterations", self.num_iterations)
        check_positive_float("temperature", self.temperature)
        check_positive_float("noise_sigma", self.noise_sigma)
        check_range("beta", self.beta, 0, 1, low_open=True)


@struct.dataclass
class MPPIState:
    """Plan state of MPPI.

    Attributes:
      mean: ``[H, A] float32``, the last solution (the next call's initial mean).
    """

    mean: Array


def low_pass(noise: Array, beta: float) -> Array:
    """Filter noise over time: ``u_t = beta * n_t + (1 - beta) * u_{t-1}``, ``u_{-1} = 0``.

    Args:
      noise: ``[N, H, A] float32``.
      beta: weight of the new noise, in ``(0, 1]``.

    Returns:
      ``[N, H, A] float32`` the filtered noise.
    """

    def step(u_prev, n_t):
        u_t = beta * n_t + (1 - beta) * u_prev
        return u_t, u_t

    time_major = jnp.swapaxes(noise, 0, 1)  # [H, N, A]
    _, filtered = jax.lax.scan(step, jnp.zeros_like(time_major[0]), time_major)
    return jnp.swapaxes(filtered, 0, 1)


def mppi_weights(returns: Array, temperature: float) -> Array:
    """``softmax(returns / temperature)``, stable for ``-inf`` returns and tiny temperatures.

    Args:
      returns: ``[N] float32`` sanitized returns (finite or ``-inf``).
      temperature: ``lambda > 0``.

    Returns:
      ``[N] float32`` weights summing to 1, ``-inf`` returns weighted 0. If every return is
      ``-inf`` the weights are uniform (callers that must not move then check for it).
    """
    top = jnp.max(returns)
    any_finite = jnp.isfinite(top)
    logits = (returns - jnp.where(any_finite, top, 0.0)) / temperature
    weights = jnp.exp(logits)
    uniform = jnp.full_like(returns, 1.0 / returns.shape[0])
    return jnp.where(any_finite, weights / jnp.sum(weights), uniform)


def mppi_update(
    mean: Array, actions: Array, returns: Array, temperature: float
) -> tuple[Array, Array]:
    """One MPPI mean update, the pure core of every iteration.

    Args:
      mean: ``[H, A] float32`` the current mean (kept if no return is finite).
      actions: ``[N, H, A] float32`` the candidates to average: the scored actions, or (as
        :func:`mppi` does) the latent sequences ``raw`` they were clipped from.
      returns: ``[N] float32`` their sanitized returns.
      temperature: ``lambda > 0``.

    Returns:
      ``(new_mean [H, A], expected_return [])``: the softmax-weighted average of ``actions``
      and of ``returns`` (``-inf`` if no return is finite).
    """
    weights = mppi_weights(returns, temperature)
    any_finite = jnp.isfinite(jnp.max(returns))
    new_mean = jnp.sum(weights[:, None, None] * actions, axis=0)
    expected = jnp.sum(jnp.where(weights > 0, weights * returns, 0.0))
    return (
        jnp.where(any_finite, new_mean, mean),
        jnp.where(any_finite, expected, -jnp.inf),
    )


def mppi(config: MPPIConfig) -> Planner:
    """Build an MPPI planner.

    Args:
      config: an :class:`MPPIConfig`.

    Returns:
      A :class:`~jaxmbrl.planners.base.Planner`. ``plan(state, key, objective)`` returns
      ``(action [A] float32, state, info)``; the objective is called ``num_iterations`` times
      on ``[N, H, A]`` candidates inside the bounds. ``info.solution`` is the final mean
      clipped to the bounds (never scored itself);
      ``info.expected_return`` is the softmax-weighted mean return of the last iteration.
    """
    if not isinstance(config, MPPIConfig):
        raise TypeError(f"config must be an MPPIConfig, got {type(config).__name__}")
    low, high = config.bounds()
    midpoint = (low + high) / 2
    margin = LATENT_MARGIN * (high - low)
    latent_low, latent_high = low - margin, high + margin  # where raw (and the mean) may go
    shape = (config.num_samples, config.horizon, config.action_dim)

    def init() -> MPPIState:
        return MPPIState(mean=config.midpoint_plan())

    def plan(state: MPPIState, key: PRNGKey, objective: Objective):
        keys = jax.random.split(key, config.num_iterations)

        def iteration(mean, iter_key):
            noise_key, eval_key = jax.random.split(iter_key)
            noise = jax.random.normal(noise_key, shape, jnp.float32)
            # sigma scales the filtered noise (the same, low_pass being linear): a huge sigma
            # then overflows to +-inf, which the clips map to finite values, instead of
            # entering the filter, where inf - inf would be NaN. Bit-identical for sigma = 1.
            perturbation = config.noise_sigma * low_pass(noise, config.beta)
            raw = clip_broadcast(mean[None] + perturbation, latent_low, latent_high)
            actions = clip_broadcast(raw, low, high)
            returns = evaluate(objective, eval_key, actions)
            # The latent mean averages raw, not actions, so it can reach and pass a bound.
            return mppi_update(mean, raw, returns, config.temperature)

        mean0 = clip_broadcast(state.mean, low, high)
        mean, expected = jax.lax.scan(iteration, mean0, keys)
        solution = clip_broadcast(mean, low, high)
        info = PlanInfo(solution=solution, expected_return=expected[-1])
        return solution[0], MPPIState(mean=solution), info

    def shift(state: MPPIState) -> MPPIState:
        return MPPIState(mean=shift_sequence(state.mean, midpoint))

    return Planner(init=init, plan=plan, shift=shift)


__all__ = [
    "LATENT_MARGIN",
    "MPPIConfig",
    "MPPIState",
    "low_pass",
    "mppi",
    "mppi_update",
    "mppi_weights",
]
