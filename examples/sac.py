"""A compact soft actor-critic (Haarnoja et al. 2018) for gymnax Pendulum-v1, compiled whole.

The model-free baseline of ``model_free_vs_pets.py``. ``make_train(config)`` returns
``train(key)``: every real environment step, its replay-buffer insert and its gradient update
run inside one ``lax.scan`` (episodes of ``T`` steps nested in a scan over episodes), and a
deterministic evaluation follows every episode. Seeds are a ``vmap`` axis of ``train``.

The agent: a tanh-squashed Gaussian actor, twin Q critics with Polyak-averaged targets,
automatic entropy tuning towards ``-A`` (SAC v2, as in Stable-Baselines3), plain-pytree MLPs,
optax Adam, jaxmbrl's replay buffer. Actions live in ``[-1, 1]`` inside the agent (buffer,
critics, log-probabilities) and are scaled to the environment's box only when stepping.

Pendulum-v1 never terminates (its episodes end on the time limit alone), so every TD target
bootstraps; the loop is written for that task and says so in :class:`SACConfig`.

Shapes follow ``jaxmbrl.types`` (``O`` observation, ``A`` action, ``M`` minibatch, ``T`` steps
of an episode); functions are written for one seed and callers ``vmap``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmbrl import buffer as rb
from jaxmbrl.envs import make
from jaxmbrl.types import Array, PRNGKey, PyTree

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC on a gymnax task without terminal states (hashable; static under ``jit``).

    The defaults are the usual ones that solve Pendulum-v1 (rl-baselines3-zoo's SAC entry:
    learning rate 1e-3, 2 x 256 ReLU, batch 256, gamma 0.99, tau 0.005, one update per step,
    automatic entropy coefficient starting at 1).

    Attributes:
      env_name: a gymnax id with a ``Box`` action space and no terminal states.
      total_steps: real environment steps, a multiple of ``episode_length``.
      episode_length: ``T``, steps per episode (Pendulum-v1: 200).
      random_steps: uniform-random steps first (no updates), a multiple of ``episode_length``;
        200 matches PETS' one random episode.
      hidden_sizes: hidden widths of the actor and of each critic.
      learning_rate: Adam step size of the actor, the critics and the entropy coefficient.
      batch_size: ``M``.
      gamma: discount.
      tau: Polyak rate of the target critics.
      init_alpha: the entropy coefficient at the start.
      eval_episodes: deterministic episodes (``tanh`` of the mean action) after every episode.
    """

    env_name: str = "Pendulum-v1"
    total_steps: int = 20_000
    episode_length: int = 200
    random_steps: int = 200
    hidden_sizes: tuple[int, ...] = (256, 256)
    learning_rate: float = 1e-3
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    init_alpha: float = 1.0
    eval_episodes: int = 5

    def __post_init__(self):
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        t = self.episode_length
        if t < 1 or self.total_steps < t or self.total_steps % t:
            raise ValueError(f"total_steps must be a positive multiple of episode_length {t}")
        if self.random_steps < t or self.random_steps % t or self.random_steps >= self.total_steps:
            raise ValueError(
                f"random_steps must be a positive multiple of episode_length {t} below "
                f"total_steps {self.total_steps}, got {self.random_steps}"
            )
        if self.batch_size < 1 or self.eval_episodes < 1:
            raise ValueError("batch_size and eval_episodes must be >= 1")
        if not (0.0 < self.tau <= 1.0 and 0.0 <= self.gamma < 1.0):
            raise ValueError("need 0 < tau <= 1 and 0 <= gamma < 1")


# ---------------------------------------------------------------------------------- networks


def mlp_init(key: PRNGKey, sizes: tuple[int, ...]) -> list[dict[str, Array]]:
    """Layers ``[{"w": [n_in, n_out], "b": [n_out]}]`` with PyTorch's default scale."""
    init = jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": init(k, (n_in, n_out), jnp.float32), "b": jnp.zeros((n_out,), jnp.float32)}
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def mlp_apply(params: list[dict[str, Array]], x: Array) -> Array:
    """ReLU hidden layers, linear output; ``x [..., n_in] -> [..., n_out]``."""
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def squashed_gaussian(actor: PyTree, obs: Array, key: PRNGKey) -> tuple[Array, Array]:
    """Sample ``a = tanh(u)``, ``u ~ N(mean, std)`` for ``obs [..., O]``.

    Returns:
      ``action [..., A]`` in ``[-1, 1]`` and its log-density ``[...]`` (change of variables:
      ``log N(u) - sum log(1 - tanh(u)^2)``, the latter written stably).
    """
    mean, log_std = jnp.split(mlp_apply(actor, obs), 2, axis=-1)
    log_std = jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)
    eps = jax.random.normal(key, mean.shape)
    u = mean + jnp.exp(log_std) * eps
    log_normal = -0.5 * eps**2 - log_std - 0.5 * math.log(2 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))  # log(1 - tanh(u)^2)
    return jnp.tanh(u), jnp.sum(log_normal - log_det, axis=-1)


def deterministic_action(actor: PyTree, obs: Array) -> Array:
    """``tanh(mean)`` ``[..., A]``: the evaluation policy."""
    mean, _ = jnp.split(mlp_apply(actor, obs), 2, axis=-1)
    return jnp.tanh(mean)


def q_values(critic: PyTree, obs: Array, action: Array) -> Array:
    """Both critics (leaves stacked on a leading axis of 2): ``[2, ...]``."""
    x = jnp.concatenate([obs, action], axis=-1)
    return jax.vmap(mlp_apply, in_axes=(0, None))(critic, x)[..., 0]


# ------------------------------------------------------------------------------------ update


class SACState(NamedTuple):
    """The learner: ``actor``; ``critic`` and ``target`` (twin critics, leaves ``[2, ...]``);
    ``log_alpha []``; the three optax states."""

    actor: PyTree
    critic: PyTree
    target: PyTree
    log_alpha: Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any


class Batch(NamedTuple):
    """Transitions: ``obs [M, O]``, ``action [M, A]`` in ``[-1, 1]``, ``reward [M]``,
    ``next_obs [M, O]``."""

    obs: Array
    action: Array
    reward: Array
    next_obs: Array


class SAC(NamedTuple):
    """SAC as pure functions: ``init(key) -> SACState``;
    ``update(state, batch, key) -> (state, {"critic_loss", "actor_loss", "alpha"})``;
    ``critic_loss(critic, state, batch, key) -> []`` (the TD loss the update minimises)."""

    init: Any
    update: Any
    critic_loss: Any


def make_sac(config: SACConfig, obs_dim: int, action_dim: int) -> SAC:
    """The SAC learner for observations ``[O]`` and actions ``[A]`` (``config`` as above)."""
    opt = optax.adam(config.learning_rate)
    target_entropy = -float(action_dim)
    hidden = config.hidden_sizes

    def init(key: PRNGKey) -> SACState:
        k_actor, k_critic = jax.random.split(key)
        actor = mlp_init(k_actor, (obs_dim, *hidden, 2 * action_dim))
        critic = jax.vmap(lambda k: mlp_init(k, (obs_dim + action_dim, *hidden, 1)))(
            jax.random.split(k_critic)
        )
        log_alpha = jnp.asarray(math.log(config.init_alpha), jnp.float32)
        return SACState(
            actor, critic, critic, log_alpha, opt.init(actor), opt.init(critic), opt.init(log_alpha)
        )

    def critic_loss(critic: PyTree, state: SACState, batch: Batch, key: PRNGKey) -> Array:
        next_action, next_logp = squashed_gaussian(state.actor, batch.next_obs, key)
        q_next = jnp.min(q_values(state.target, batch.next_obs, next_action), axis=0)  # [M]
        soft_v = q_next - jnp.exp(state.log_alpha) * next_logp
        target = jax.lax.stop_gradient(batch.reward + config.gamma * soft_v)
        q = q_values(critic, batch.obs, batch.action)  # [2, M]
        return 0.5 * jnp.sum(jnp.mean((q - target) ** 2, axis=-1))

    def actor_loss(actor: PyTree, critic: PyTree, log_alpha: Array, obs: Array, key: PRNGKey):
        action, logp = squashed_gaussian(actor, obs, key)
        q = jnp.min(q_values(critic, obs, action), axis=0)
        return jnp.mean(jnp.exp(log_alpha) * logp - q), logp

    def update(state: SACState, batch: Batch, key: PRNGKey):
        k_critic, k_actor = jax.random.split(key)
        c_loss, c_grad = jax.value_and_grad(critic_loss)(state.critic, state, batch, k_critic)
        c_step, critic_opt = opt.update(c_grad, state.critic_opt)
        critic = optax.apply_updates(state.critic, c_step)

        (a_loss, logp), a_grad = jax.value_and_grad(actor_loss, has_aux=True)(
            state.actor, critic, state.log_alpha, batch.obs, k_actor
        )
        a_step, actor_opt = opt.update(a_grad, state.actor_opt)
        actor = optax.apply_updates(state.actor, a_step)

        entropy_gap = jax.lax.stop_gradient(jnp.mean(logp) + target_entropy)
        alpha_grad = -entropy_gap  # d/d log_alpha of -log_alpha * (logp + target_entropy)
        al_step, alpha_opt = opt.update(alpha_grad, state.alpha_opt)
        log_alpha = optax.apply_updates(state.log_alpha, al_step)

        target = optax.incremental_update(critic, state.target, config.tau)
        new = SACState(actor, critic, target, log_alpha, actor_opt, critic_opt, alpha_opt)
        return new, {"critic_loss": c_loss, "actor_loss": a_loss, "alpha": jnp.exp(log_alpha)}

    return SAC(init=init, update=update, critic_loss=critic_loss)


# ----------------------------------------------------------------------------- training loop


class TrainLog(NamedTuple):
    """Per episode ``[C]`` (``C = total_steps / T``): ``real_steps`` int32 (steps done at its
    end), ``train_return`` (the data-collecting episode's return: random, then the stochastic
    policy), ``eval_return`` (mean over ``eval_episodes`` deterministic episodes after it),
    ``critic_loss`` and ``alpha`` (means over its updates; NaN for random episodes)."""

    real_steps: Array
    train_return: Array
    eval_return: Array
    critic_loss: Array
    alpha: Array


def make_train(config: SACConfig):
    """``train(key) -> (SACState, TrainLog)``: the whole run for one seed, traceable as one
    program (``jax.jit(jax.vmap(train))`` runs seeds at once)."""
    env, env_params = make(config.env_name)
    space = env.action_space(env_params)
    obs_dim = int(math.prod(env.observation_space(env_params).shape))
    action_dim = int(math.prod(space.shape)) or 1
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), (action_dim,))
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), (action_dim,))
    t_len = config.episode_length
    sac = make_sac(config, obs_dim, action_dim)

    def env_action(a: Array) -> Array:
        """``[-1, 1]`` to the environment's box, in its action shape."""
        return jnp.reshape(low + 0.5 * (a + 1.0) * (high - low), space.shape)

    def flat_obs(obs):
        return jnp.reshape(obs, (obs_dim,)).astype(jnp.float32)

    def evaluate(actor: PyTree, key: PRNGKey) -> Array:
        def one(k):
            k_reset, k_steps = jax.random.split(k)
            obs, env_state = env.reset_env(k_reset, env_params)

            def step(carry, k_env):
                obs, env_state = carry
                a = deterministic_action(actor, flat_obs(obs))
                obs, env_state, r, _, _ = env.step_env(k_env, env_state, env_action(a), env_params)
                return (obs, env_state), jnp.asarray(r, jnp.float32).reshape(())

            _, rewards = jax.lax.scan(step, (obs, env_state), jax.random.split(k_steps, t_len))
            return jnp.sum(rewards)

        return jnp.mean(jax.vmap(one)(jax.random.split(key, config.eval_episodes)))

    def episode(carry, key, learn: bool):
        """One real episode of ``T`` steps (``learn``: policy actions and an update per step;
        otherwise uniform-random actions), then a deterministic evaluation."""
        sac_state, buffer = carry
        k_reset, k_steps, k_eval = jax.random.split(key, 3)
        obs, env_state = env.reset_env(k_reset, env_params)

        def step(inner, k):
            sac_state, buffer, obs, env_state = inner
            k_act, k_env, k_sample, k_update = jax.random.split(k, 4)
            o = flat_obs(obs)
            if learn:
                a, _ = squashed_gaussian(sac_state.actor, o, k_act)
            else:
                a = jax.random.uniform(k_act, (action_dim,), minval=-1.0, maxval=1.0)
            next_obs, env_state, r, _, _ = env.step_env(k_env, env_state, env_action(a), env_params)
            r = jnp.asarray(r, jnp.float32).reshape(())
            item = Batch(o, a, r, flat_obs(next_obs))
            buffer = rb.add(buffer, item)
            metrics = {"critic_loss": jnp.nan, "alpha": jnp.nan}
            if learn:
                batch = rb.sample(buffer, k_sample, config.batch_size)
                sac_state, m = sac.update(sac_state, batch, k_update)
                metrics = {"critic_loss": m["critic_loss"], "alpha": m["alpha"]}
            return (sac_state, buffer, next_obs, env_state), (r, metrics)

        inner = (sac_state, buffer, obs, env_state)
        (sac_state, buffer, _, _), (rewards, metrics) = jax.lax.scan(
            step, inner, jax.random.split(k_steps, t_len)
        )
        out = (
            jnp.sum(rewards),
            evaluate(sac_state.actor, k_eval),
            jnp.mean(jnp.asarray(metrics["critic_loss"])),
            jnp.mean(jnp.asarray(metrics["alpha"])),
        )
        return (sac_state, buffer), out

    def train(key: PRNGKey):
        k_init, k_random, k_learn = jax.random.split(key, 3)
        item = Batch(
            jnp.zeros((obs_dim,)), jnp.zeros((action_dim,)), jnp.zeros(()), jnp.zeros((obs_dim,))
        )
        carry = (sac.init(k_init), rb.init(config.total_steps, item))
        n_random = config.random_steps // t_len
        n_learn = config.total_steps // t_len - n_random
        carry, out_random = jax.lax.scan(
            lambda c, k: episode(c, k, learn=False), carry, jax.random.split(k_random, n_random)
        )
        carry, out_learn = jax.lax.scan(
            lambda c, k: episode(c, k, learn=True), carry, jax.random.split(k_learn, n_learn)
        )
        train_ret, eval_ret, c_loss, alpha = (
            jnp.concatenate([a, b]) for a, b in zip(out_random, out_learn, strict=True)
        )
        steps = t_len * jnp.arange(1, n_random + n_learn + 1, dtype=jnp.int32)
        return carry[0], TrainLog(steps, train_ret, eval_ret, c_loss, alpha)

    return train
