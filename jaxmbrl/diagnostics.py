"""Model bias, measured on MPC episodes: what a model promised against what it delivered.

At every real step of an episode the planner picks a plan from the real state ``s_t``.
:func:`plan_trace` runs the episode (:func:`jaxmbrl.mpc.episode`) and scores every chosen
plan again from its ``s_t``: by the objective the planner maximised (``imagined``) and by the
true dynamics (``open_loop``: the plan executed blind). :func:`summarize` compares both with
the real rewards MPC collected while replanning (``closed_loop``), as ``H``-step returns
from the same states, so the gaps compare directly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from jaxmbrl import mpc
from jaxmbrl.envs.spec import Environment
from jaxmbrl.planners.base import Planner
from jaxmbrl.types import Array, PRNGKey


class PlanTrace(NamedTuple):
    """One MPC episode, per real step ``t`` (``[T]`` each; leading axes added by ``vmap``).

    Attributes:
      reward: real reward of the action taken.
      expected: the planner's own estimate, ``PlanInfo.expected_return``.
      imagined: the model's ``H``-step return of the chosen plan from the real state.
      open_loop: the true environment's ``H``-step return of the same plan, same state.
      imagined_first: the model's predicted reward of the action taken (the plan's first
        step), or ``None`` unless ``plan_trace(..., one_step=True)``.
    """

    reward: Array
    expected: Array
    imagined: Array
    open_loop: Array
    imagined_first: Array | None = None


def plan_trace(
    env: Environment,
    planner: Planner,
    make_objective: mpc.ObjectiveFactory,
    key: PRNGKey,
    *,
    num_steps: int,
    one_step: bool = False,
) -> PlanTrace:
    """Run one MPC episode and score every chosen plan again (see the module docstring).

    Args:
      env: the real environment.
      planner: the planner.
      make_objective: ``(env_state, obs) -> objective``, the model the planner uses.
      key: consumed: the episode's keys (as :func:`jaxmbrl.mpc.run_episode`) and the
        re-scoring keys.
      num_steps: ``T``.
      one_step: also score each plan's first step alone (``imagined_first``).

    Returns:
      A :class:`PlanTrace` of ``[T]`` arrays. Pure; jit and vmap it at the call site.
    """
    reset_key, loop_key = jax.random.split(key)
    step_keys = jax.random.split(loop_key, num_steps)
    record = mpc.episode(env, planner, make_objective, reset_key, step_keys, record_env_states=True)
    score_keys = jax.random.split(jax.random.fold_in(key, 1), num_steps)
    first = None
    if one_step:  # the plans' first steps alone: [T, 1, A]
        first_steps = record.replace(solutions=record.solutions[:, :1])
        first = mpc.rescore(make_objective, first_steps, score_keys)
    return PlanTrace(
        reward=record.rewards,
        expected=record.expected_returns,
        imagined=mpc.rescore(make_objective, record, score_keys),
        open_loop=mpc.rescore(mpc.oracle(env), record, score_keys),
        imagined_first=first,
    )


def window_returns(rewards: np.ndarray, horizon: int) -> np.ndarray:
    """``[..., T]`` rewards -> ``[..., T - H + 1]`` sums ``r_t + ... + r_{t+H-1}``."""
    c = np.concatenate([np.zeros((*rewards.shape[:-1], 1)), np.cumsum(rewards, -1)], -1)
    return c[..., horizon:] - c[..., :-horizon]


def summarize(trace: PlanTrace, horizon: int) -> dict:
    """Window means (``t = 0..T-H``) of one model's traces ``[..., S, T]`` (``S`` episodes).

    Returns a dict of floats: ``imagined``, ``expected``, ``open_loop``, ``closed_loop``
    (mean ``H``-step returns), ``gap_open = imagined - open_loop``, ``gap_closed = imagined
    - closed_loop``, ``replanning_gain = closed_loop - open_loop``, their per-step versions
    (``/ H``), the standard deviation of the gaps across episodes, ``real_return`` (the mean
    episode return) with its min and max, and ``imagined_one_step_return`` when the trace
    has ``imagined_first``.
    """
    tr = jax.tree.map(lambda x: np.asarray(x, np.float64), trace)
    n = tr.reward.shape[-1] - horizon + 1
    per_ep = {
        "imagined": tr.imagined[..., :n].mean(-1),
        "expected": tr.expected[..., :n].mean(-1),
        "open_loop": tr.open_loop[..., :n].mean(-1),
        "closed_loop": window_returns(tr.reward, horizon).mean(-1),
    }
    per_ep["gap_open"] = per_ep["imagined"] - per_ep["open_loop"]
    per_ep["gap_closed"] = per_ep["imagined"] - per_ep["closed_loop"]
    per_ep["replanning_gain"] = per_ep["closed_loop"] - per_ep["open_loop"]
    out = {k: float(v.mean()) for k, v in per_ep.items()}
    for k in ("gap_open", "gap_closed", "replanning_gain"):
        out[f"{k}_per_step"] = out[k] / horizon
        out[f"{k}_std"] = float(per_ep[k].reshape(-1).std())
    ret = tr.reward.sum(-1).reshape(-1)
    out.update(real_return=float(ret.mean()), real_min=float(ret.min()), real_max=float(ret.max()))
    if tr.imagined_first is not None:
        out["imagined_one_step_return"] = float(tr.imagined_first.sum(-1).mean())
    return out


__all__ = ["PlanTrace", "plan_trace", "summarize", "window_returns"]
