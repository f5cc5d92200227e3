"""PPO and TRPO on a MuJoCo task with its true reward, against Stable-Baselines3's PPO.

Same hyperparameters for rlhp's PPO and SB3's PPO (CleanRL's MuJoCo setting: 2048 steps x 1
env, 10 epochs, 32 minibatches of 64, lr 3e-4 annealed, gamma 0.99, lambda 0.95, clip 0.2
for ratio and value, obs and reward normalization, 64x64 tanh actor and critic).
TRPO uses OpenAI Baselines' MuJoCo setting (1024 steps, max KL 0.01, 10 CG iterations,
damping 0.1, lambda 0.98).

Two modes:
  learning (default): each algorithm for --steps steps; final mean return (last 10 training
      episodes, and --eval-episodes deterministic evaluation episodes) and env steps/s.
  --throughput: each algorithm for --steps steps, --repeats times, interleaved so that load
      on the machine hits all of them alike; median steps/s and the ratio to SB3.

  python benchmarks/ppo_mujoco.py --env Hopper-v5 --steps 1000000
  python benchmarks/ppo_mujoco.py --throughput --steps 30000 --repeats 5

``ppo-autograd`` is rlhp's PPO with ``learner.ppo.closed_form_gradient=false`` (eq. 9's
gradient from autograd, the default before 2026-12-06), for a side-by-side check of the
closed-form gradient; ``ppo-foreach`` also takes ``learner.ppo.fused_adam=false`` (Adam's
multi-tensor path, the default before 2026-12-05). ``ppo-torch-step`` is rlhp's PPO with
torch's own ``clip_grad_norm_`` and ``Adam.step`` in place of ``rlhp.algos.lean_step`` (the
same numbers, bit for bit; rlhp's path before 2026-12-06).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np

from rlhp.algos.lean_step import LeanFusedAdam
from rlhp.algos.trainer import OnPolicyTrainer, evaluate_policy
from rlhp.config import validate_config

RESULTS = Path(__file__).parent / "results"


@contextlib.contextmanager
def _torch_step() -> Iterator[None]:
    """PPO's update through torch's ``clip_grad_norm_`` and ``Adam.step`` (no lean step)."""
    supports = LeanFusedAdam.supports
    LeanFusedAdam.supports = staticmethod(lambda _: False)  # type: ignore[method-assign]
    try:
        yield
    finally:
        LeanFusedAdam.supports = supports  # type: ignore[method-assign]


def rlhp_config(algo: str, env_id: str, steps: int, seed: int):
    learner: dict = {"algo": "ppo" if algo == "ppo-torch-step" else algo}
    if algo == "ppo-foreach":  # rlhp's PPO with Adam's foreach path (its default until 2026-12-05)
        learner = {"algo": "ppo", "ppo": {"fused_adam": False, "closed_form_gradient": False}}
    if algo == "ppo-autograd":  # rlhp's PPO with autograd's gradient (its default until 2026-12-06)
        learner = {"algo": "ppo", "ppo": {"closed_form_gradient": False}}
    if algo == "trpo":
        learner |= {"rollout_steps": 1024, "gae_lambda": 0.98}
    return validate_config(
        {
            "seed": seed,
            "total_steps": steps,
            "env": {"id": env_id},
            "learner": learner,
            "device": "cpu",
        }
    )


def run_rlhp(algo: str, env_id: str, steps: int, seed: int, eval_episodes: int) -> dict:
    trainer = OnPolicyTrainer(rlhp_config(algo, env_id, steps, seed))
    t0 = time.perf_counter()
    returns: list[float] = []
    with _torch_step() if algo == "ppo-torch-step" else contextlib.nullcontext():
        for stats in trainer.train():
            returns.extend(stats.episode_returns)
            if stats.iteration % 50 == 0:
                print(
                    f"  rlhp-{algo} step {stats.global_step}: "
                    f"recent return {stats.mean_recent_return:.0f}",
                    flush=True,
                )
    wall = time.perf_counter() - t0
    out = {
        "impl": f"rlhp-{algo}",
        "steps": trainer.global_step,
        "wall_s": wall,
        "steps_per_s": trainer.global_step / wall,
        "final_return_last10": float(np.mean(returns[-10:])) if returns else float("nan"),
    }
    if eval_episodes:
        out["eval_return"] = float(
            np.mean(evaluate_policy(trainer.policy, gym.make(env_id), eval_episodes, seed + 10_000))
        )
    trainer.close()
    return out


def run_sb3(env_id: str, steps: int, seed: int, eval_episodes: int) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    class Returns(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.returns: list[float] = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(float(info["episode"]["r"]))
            return True

    torch.set_num_threads(torch.get_num_threads())  # SB3's own default
    env = VecNormalize(
        make_vec_env(env_id, n_envs=1, seed=seed), gamma=0.99, clip_obs=10.0, clip_reward=10.0
    )
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=2048,
        batch_size=64,
        n_epochs=10,
        learning_rate=lambda f: 3e-4 * f,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        clip_range_vf=0.2,
        ent_coef=0.0,
        vf_coef=0.5,
        max_grad_norm=0.5,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    cb = Returns()
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, callback=cb)
    wall = time.perf_counter() - t0
    out = {
        "impl": "sb3-ppo",
        "steps": int(model.num_timesteps),
        "wall_s": wall,
        "steps_per_s": model.num_timesteps / wall,
        "final_return_last10": float(np.mean(cb.returns[-10:])) if cb.returns else float("nan"),
    }
    if eval_episodes:
        env.training, env.norm_reward = False, False
        eval_env = gym.make(env_id)
        total_returns = []
        for ep in range(eval_episodes):
            obs, _ = eval_env.reset(seed=seed + 10_000 + ep)
            done, total = False, 0.0
            while not done:
                action, _ = model.predict(env.normalize_obs(obs[None]), deterministic=True)
                obs, r, term, trunc, _ = eval_env.step(action[0])
                total += float(r)
                done = term or trunc
            total_returns.append(total)
        out["eval_return"] = float(np.mean(total_returns))
    return out


def run(impl: str, env_id: str, steps: int, seed: int, eval_episodes: int) -> dict:
    return (
        run_sb3(env_id, steps, seed, eval_episodes)
        if impl == "sb3"
        else run_rlhp(impl, env_id, steps, seed, eval_episodes)
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--impls",
        default="ppo,trpo,sb3",
        help="comma list of ppo, ppo-torch-step, ppo-autograd, ppo-foreach, trpo, sb3",
    )
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--throughput", action="store_true", help="interleaved steps/s comparison only")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    impls = args.impls.split(",")
    RESULTS.mkdir(exist_ok=True)

    if args.throughput:
        sps: dict[str, list[float]] = {i: [] for i in impls}
        for r in range(args.repeats):
            for impl in impls:
                res = run(impl, args.env, args.steps, args.seed + r, eval_episodes=0)
                sps[impl].append(res["steps_per_s"])
                print(f"repeat {r} {res['impl']}: {res['steps_per_s']:.0f} steps/s", flush=True)
        summary = {i: statistics.median(v) for i, v in sps.items()}
        print(f"\n{args.env}, {args.steps} steps x {args.repeats} repeats, median env steps/s:")
        for impl, v in summary.items():
            ratio = f"  ({v / summary['sb3']:.2f}x SB3)" if "sb3" in summary else ""
            print(f"  {impl:11s} {v:8.0f}{ratio}")
        out = {
            "mode": "throughput",
            "env": args.env,
            "steps": args.steps,
            "samples": sps,
            "median": summary,
        }
        (RESULTS / f"throughput_{args.env}.json").write_text(json.dumps(out, indent=2))
        return

    results = []
    for impl in impls:
        print(f"== {impl} on {args.env}, {args.steps} steps, seed {args.seed}", flush=True)
        res = run(impl, args.env, args.steps, args.seed, args.eval_episodes)
        print(json.dumps(res), flush=True)
        results.append(res)
        (RESULTS / f"learning_{args.env}_{impl}_seed{args.seed}.json").write_text(
            json.dumps(res, indent=2)
        )
    print(
        f"\n{'impl':10s} {'return(last10)':>15s} {'eval return':>12s} {'steps/s':>9s} {'wall s':>8s}"
    )
    for r in results:
        print(
            f"{r['impl']:10s} {r['final_return_last10']:15.0f} {r.get('eval_return', float('nan')):12.0f} "
            f"{r['steps_per_s']:9.0f} {r['wall_s']:8.0f}"
        )


if __name__ == "__main__":
    main()
