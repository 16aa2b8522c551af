"""mbrl-lib side of bench_pets_episode.py: one 200-step Pendulum-v1 episode of PETS planning.

Runs in the peer environment (mbrl-lib 0.2.0 and torch; ``PEER_TORCH``, default
``/tmp/peer-torch``); builds the agent with the helpers of the peers' planning script
(``mbrl_lib_plan_bench.py``'s ``ENVS`` and ``build_cfg``, imported from
``$JAXMBRL_SHARED/peers``, default ``../shared/peers`` beside the checkout), that is with
mbrl-lib 0.2.0's PETS defaults (7-member Gaussian ensemble 4 x 200 SiLU, 5 elites,
20 particles, TS1, CEM 350/35/5, H 15), and calls
``agent.act(obs)`` on every step of a real gymnasium Pendulum-v1 episode. The model is
untrained: planning cost does not depend on the weights. Prints one ``RESULT`` line.

Run: ``$PEER_TORCH/bin/python benchmarks/peer_mbrl_pets_episode.py [--steps 200]``
(re-executes itself with tuned malloc, as the peer benchmark's ``--tuned-malloc`` does).
"""

import argparse
import os
import pathlib
import sys
import time

SHARED = pathlib.Path(
    os.environ.get("JAXMBRL_SHARED", pathlib.Path(__file__).resolve().parents[2] / "shared")
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
        env = dict(
            os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 32), MALLOC_TRIM_THRESHOLD_=str(1 << 32)
        )
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    sys.path.insert(0, str(SHARED / "peers"))
    import gymnasium
    import mbrl.models
    import mbrl.planning
    import mbrl.util.common
    import numpy as np
    import torch
    from mbrl_lib_plan_bench import ENVS, build_cfg

    torch.set_num_threads(2)
    torch.manual_seed(0)
    env_factory, reward_fn, term_fn, _ = ENVS["pendulum"]
    spec_env = env_factory()
    cfg = build_cfg("pets_cartpole", "cem", {})
    model = mbrl.util.common.create_one_dim_tr_model(
        cfg, spec_env.observation_space.shape, spec_env.action_space.shape
    )
    model.set_elite(list(range(cfg.overrides.num_elites)))
    rng = np.random.default_rng(0)
    model.input_normalizer.update_stats(rng.normal(size=(1000, 4)).astype(np.float32))
    generator = torch.Generator(device="cpu")
    generator.manual_seed(0)
    model_env = mbrl.models.ModelEnv(spec_env, model, term_fn, reward_fn, generator=generator)
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(
        model_env, cfg.algorithm.agent, num_particles=cfg.algorithm.num_particles
    )
    # the unwrapped env: gymnasium 0.26.3's env checker calls np.bool8, gone in numpy 2
    env = gymnasium.make("Pendulum-v1", disable_env_checker=True)
    obs, _ = env.reset(seed=0)
    agent.reset()
    agent.act(obs)  # warm-up, as jaxmbrl's timing excludes compilation
    agent.reset()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        action = agent.act(obs)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    total = time.perf_counter() - t0
    print(
        f"RESULT mbrl-lib pets_episode steps={args.steps} total_s={total:.2f} "
        f"per_step_s={total / args.steps:.4f} malloc={os.environ.get('MALLOC_MMAP_THRESHOLD_')}",
        flush=True,
    )


if __name__ == "__main__":
    main()
