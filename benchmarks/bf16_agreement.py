"""Does planning with bfloat16 matmuls choose the same actions as float32?

A PETS agent (``--preset``: the mbrl-lib or default settings) learns Pendulum-v1 for a few
episodes in float32. Then, from 12 start states and with the trained model:

* the first action chosen with bfloat16 matmul operands (float32 accumulation) against the
  float32 one, same key -- the precision effect;
* float32 against float32 with another key -- the planner's own sampling noise, the yardstick;
* one closed-loop episode from the same start in each precision (real returns).

Run: ``python benchmarks/bf16_agreement.py [--preset mbrl-lib] [--out DIR]``; writes
``DIR/bf16_agreement.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import time

import jax
import numpy as np

from jaxmbrl import envs
from jaxmbrl.agents.pets import PETSConfig, make_pets, pets_setup
from jaxmbrl.planners import registry
from jaxmbrl.reporting import machine_record, strict_json, write_json


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mbrl-lib", choices=["default", "mbrl-lib"])
    parser.add_argument("--episodes", type=int, default=3, help="float32 PETS episodes first")
    parser.add_argument("--out", default="runs/bench")
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    f32 = PETSConfig.preset(
        args.preset, num_episodes=args.episodes, planning_matmul_dtype="float32"
    )
    bf16 = dataclasses.replace(f32, planning_matmul_dtype="bfloat16")
    p32, p16 = make_pets(f32), make_pets(bf16)
    state = p32.init(jax.random.key(0))
    state, _ = jax.jit(p32.random_episode)(state)
    train, episode32 = jax.jit(p32.train_model), jax.jit(p32.planned_episode)
    for _ in range(args.episodes):
        state, _ = train(state)
        state, stats = episode32(state)
        print(f"float32 PETS episode return {float(stats.episode_return):.1f}", flush=True)
    state, _ = train(state)

    planner, _ = registry.build(f32.planner, pets_setup(f32).env.action)
    env = envs.load(f32.env_name, f32.episode_length)[1]
    starts = jax.vmap(lambda k: env.reset(k)[0])(jax.random.split(jax.random.key(1), 12))

    def first_action(pets, obs, key):
        action, _, _ = planner.plan(planner.init(), key, pets.objective(state.model, obs))
        return action

    act32 = jax.jit(jax.vmap(lambda o, k: first_action(p32, o, k)))
    act16 = jax.jit(jax.vmap(lambda o, k: first_action(p16, o, k)))
    keys_a = jax.random.split(jax.random.key(2), 12)
    keys_b = jax.random.split(jax.random.key(3), 12)
    a32, a16, a32b = act32(starts, keys_a), act16(starts, keys_a), act32(starts, keys_b)
    precision = np.abs(np.asarray(a32 - a16)).ravel()
    sampling = np.abs(np.asarray(a32 - a32b)).ravel()
    same_sign = float(np.mean(np.sign(np.asarray(a32)) == np.sign(np.asarray(a16))))

    ret32 = float(episode32(state)[1].episode_return)
    ret16 = float(jax.jit(p16.planned_episode)(state)[1].episode_return)
    report = {
        "preset": args.preset,
        "float32_training_episodes": args.episodes,
        "first_action_abs_diff_bf16_vs_f32": {
            "mean": float(precision.mean()),
            "max": float(precision.max()),
        },
        "first_action_abs_diff_f32_other_key": {
            "mean": float(sampling.mean()),
            "max": float(sampling.max()),
        },
        "same_sign_fraction": same_sign,
        "closed_loop_return": {"float32": ret32, "bfloat16": ret16},
        "wall_s": time.perf_counter() - t0,
        "machine": machine_record(),
    }
    print(json.dumps(strict_json(report), indent=2, allow_nan=False))
    write_json(out_dir / "bf16_agreement.json", report)
    return report


if __name__ == "__main__":
    main()
