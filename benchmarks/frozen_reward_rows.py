"""Which change frees PPO from a frozen learned reward's falling-regime trap on Hopper-v5?
(issue "learning fidelity", item 3; ``benchmarks/README.md``, "The trap on a frozen reward").

PPO from scratch on a preference run's final reward model, kept frozen, stays in the
falling regime with some seeds that the true reward does not trap
(``train_on_frozen_reward.py``, ``reward_trap.py``). A frozen reward and the single-process
trainer make that trap deterministic per seed and cheap (~2 min for 250k steps), with none
of the asynchronous loop's noise, so it can be studied one change per row over many seeds:

- ``true``: the true reward (the run's env and learner settings), the reference;
- ``rhat``: the frozen r_hat, as the preset's learner sees it;
- ``rhat_fallen_flat``: r_hat, but every step where the hopper is not upright gets one
  constant (r_hat's mean over fallen steps of random-policy episodes). A diagnostic, not a
  method: it reads the physics state. If the trap disappears, what traps PPO is how r_hat
  varies *among fallen states*, which the true reward barely does;
- ``true_fallen_flat``: the same flattening applied to the true reward (every fallen step
  gets the true reward's mean over random-policy fallen steps, about -1), the control for
  ``rhat_fallen_flat``: it says how much of that row's effect any reward's fallen-state
  variation (for the true reward: forward velocity while falling) has on PPO;
- ``rhat_upright_bonus``: r_hat plus r_hat's own upright-fallen gap on every upright step
  (the gap doubled). Also a diagnostic: whether the gap's size relative to the rest of
  r_hat decides the trap;
- ``rhat_ent`` / ``true_ent``: the entropy bonus 0.01 (appendix A.1) on r_hat and, as its
  control, on the true reward;
- ``rhat_gae`` : A.1's discount 0.995 and GAE lambda 0.97 with PPO;
- ``rhat_trpo`` / ``true_trpo``: A.1's optimizer (TRPO, gamma 0.995, lambda 0.97, entropy
  bonus 0.01), as in the ``mujoco_synthetic`` preset.

A trial is *trapped* when its evaluation return (mean true return of 20 deterministic
episodes) is below 0: the fixed-length episode's penalty makes every fallen step cost 1, so
only a policy that lies down for most of the 1000 steps scores below 0.

    python benchmarks/frozen_reward_rows.py MODEL_DIR --rows true rhat --seeds 0 1 2 3 \\
        --out benchmarks/results/frozen_rows [--workers 2]
    python benchmarks/frozen_reward_rows.py MODEL_DIR --out DIR --table
    python benchmarks/frozen_reward_rows.py MODEL_DIR --landscape   # r_hat vs the true reward

``--landscape`` compares the frozen r_hat with the true reward on 20k random-policy steps:
the upright gap (mean of an upright step minus mean of a fallen step) in units of the
fallen steps' spread, and how much of the fallen steps' reward forward velocity explains.

MODEL_DIR holds a preference run's ``config.yaml`` and ``reward_model.pt`` (a run
directory, or a copy such as ``benchmarks/records/hopper-early/frozen_models/ppo700-seed0``);
``--version V`` takes the run's kept version V instead (``reward_models/v000V.pt``, written
with ``reward_model.keep_versions=true``), to ask the same questions of an earlier model.
Each trial writes one JSON file to ``--out`` and is skipped when its file exists, so a
stopped run resumes; ``--workers`` runs that many trials at once, each in its own process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from reward_trap import behaviour
from rlhp.algos.rollout import Rollout
from rlhp.algos.trainer import OnPolicyTrainer
from rlhp.config import RunConfig
from rlhp.envs import make_vector_env
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.provenance import code_version
from rlhp.runtime import report
from train_on_frozen_reward import frozen_reward

A1_TRPO = ["learner.algo=trpo", "learner.gamma=0.995", "learner.gae_lambda=0.97",
           "learner.trpo.ent_coef=0.01"]  # fmt: skip

# row -> (reward: "true" | "rhat" | a diagnostic reward shape named like its row, overrides)
ROWS: dict[str, tuple[str, list[str]]] = {
    "true": ("true", []),
    "rhat": ("rhat", []),
    "rhat_fallen_flat": ("rhat_fallen_flat", []),
    "rhat_upright_bonus": ("rhat_upright_bonus", []),
    "true_fallen_flat": ("true_fallen_flat", []),
    "rhat_ent": ("rhat", ["learner.ppo.ent_coef=0.01"]),
    "true_ent": ("true", ["learner.ppo.ent_coef=0.01"]),
    "rhat_gae": ("rhat", ["learner.gamma=0.995", "learner.gae_lambda=0.97"]),
    "rhat_trpo": ("rhat", A1_TRPO),
    "true_trpo": ("true", A1_TRPO),
}


def upright_from_obs(obs: np.ndarray) -> np.ndarray:
    """Hopper-v5's ``is_healthy`` from its observation [..., 11] (qpos[1:], clipped qvel):
    torso height above 0.7, torso angle within 0.2 rad. The state-range test (|x| < 100)
    reads the joint angles only, as the observation clips velocities at 10."""
    z, angle = obs[..., 0], obs[..., 1]
    return (z > 0.7) & (np.abs(angle) < 0.2) & (np.abs(obs[..., 1:5]) < 100).all(-1)


def random_policy_steps(
    cfg: RunConfig, steps: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations, actions and true rewards of uniformly random actions in the run's env."""
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), seed)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    obs_, act_, rew_ = [], [], []
    for _ in range(steps):
        action = env.action_space.sample()
        obs_.append(obs[0]), act_.append(action[0])
        obs, r, *_ = env.step(action)
        rew_.append(r[0])
    env.close()
    return np.stack(obs_), np.stack(act_), np.asarray(rew_, np.float32)


class ShapedRHat:
    """The frozen r_hat with its fallen steps flattened or its upright steps raised
    (diagnostics that read the physics state through the observation)."""

    def __init__(self, r_hat: RewardEnsemble, kind: str, cfg: RunConfig) -> None:
        self.r_hat, self.kind = r_hat, kind
        obs, act, _ = random_policy_steps(cfg, 20_000, seed=12_345)
        r, up = r_hat.predict(obs, act), upright_from_obs(obs)
        self.fallen_mean = float(r[~up].mean())
        self.gap = float(r[up].mean() - r[~up].mean())

    def __call__(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        r = np.array(self.r_hat.predict(obs, actions), np.float32)
        up = upright_from_obs(np.asarray(obs))
        if self.kind == "rhat_fallen_flat":
            r[~up] = self.fallen_mean
        else:
            r[up] += self.gap
        return r


def trial(
    model_dir: Path, row: str, seed: int, steps: int, episodes: int, version: int | None = None
) -> dict:
    reward, overrides = ROWS[row]
    cfg, r_hat = frozen_reward(model_dir, steps, seed, overrides, version)
    reward_fn: Callable | None = None  # the true reward
    if reward == "rhat":
        reward_fn = r_hat
    elif reward.startswith("rhat_"):
        reward_fn = ShapedRHat(r_hat, reward, cfg)
    elif reward == "true_fallen_flat":
        obs, _, true = random_policy_steps(cfg, 20_000, seed=12_345)
        fallen_true = float(true[~upright_from_obs(obs)].mean())
    torch.set_num_threads(1)
    trainer = OnPolicyTrainer(cfg)
    trainer.learner.reward_fn = reward_fn
    if reward == "true_fallen_flat":

        def flattened_true_reward(rollout: Rollout) -> np.ndarray:
            r = np.array(rollout.rewards, np.float32)
            r[~upright_from_obs(rollout.obs)] = fallen_true
            return r

        trainer.learner.model_rewards = flattened_true_reward  # type: ignore[method-assign]
    t0, curve = time.time(), []
    for stats in trainer.train():
        curve.append((stats.global_step, stats.mean_recent_return))
    policy = trainer.policy.cpu().eval()
    trainer.close()
    returns = report.evaluate(cfg, policy, episodes)
    result = {
        "row": row,
        "seed": seed,
        "steps": steps,
        "reward": reward,
        "overrides": overrides,
        "model_dir": str(model_dir),
        "reward_model_version": version,
        "code_version": code_version(),
        "eval_return": float(np.mean(returns)),
        "eval_returns": [float(r) for r in returns],
        "trapped": bool(np.mean(returns) < 0),
        "behaviour": behaviour(cfg, policy, r_hat, 5),  # scored with the unshaped r_hat
        "curve": curve[::10],
        "wall_s": time.time() - t0,
    }
    if isinstance(reward_fn, ShapedRHat):
        result["fallen_mean"], result["gap"] = reward_fn.fallen_mean, reward_fn.gap
    if reward == "true_fallen_flat":
        result["fallen_mean"] = fallen_true
    return result


def landscape(model_dir: Path, version: int | None = None) -> dict[str, dict[str, float]]:
    """r_hat and the true reward on random-policy steps: upright gap in fallen-spread units,
    and the fallen steps' correlation with forward velocity (obs[5] = qvel[0], clipped)."""
    cfg, r_hat = frozen_reward(model_dir, version=version)
    obs, act, true = random_policy_steps(cfg, 20_000, seed=12_345)
    up = upright_from_obs(obs)
    out = {}
    for name, r in (("r_hat", r_hat.predict(obs, act)), ("true", true)):
        fallen = r[~up]
        out[name] = {
            "upright_mean": float(r[up].mean()),
            "fallen_mean": float(fallen.mean()),
            "fallen_std": float(fallen.std()),
            "gap_in_fallen_std": float((r[up].mean() - fallen.mean()) / fallen.std()),
            "fallen_corr_forward_velocity": float(np.corrcoef(fallen, obs[~up, 5])[0, 1]),
        }
    out["upright_fraction"] = {"random_policy": float(up.mean())}
    return out


def table(out: Path, rows: list[str]) -> None:
    results: dict[str, list[dict]] = {}
    for f in sorted(out.glob("*-seed*.json")):
        r = json.loads(f.read_text())
        results.setdefault(r["row"], []).append(r)
    print("| row | eval return per seed | trapped | median | upright steps (of 1000), median |")
    print("| --- | --- | ---: | ---: | ---: |")
    for row in [r for r in rows if r in results] + sorted(set(results) - set(rows)):
        rs = sorted(results[row], key=lambda r: r["seed"])
        per_seed = " ".join(f"{r['seed']}:{r['eval_return']:.0f}" for r in rs)
        trapped = sum(r["trapped"] for r in rs)
        median = np.median([r["eval_return"] for r in rs])
        upright = np.median([r["behaviour"]["upright_steps"] for r in rs])
        print(f"| `{row}` | {per_seed} | {trapped}/{len(rs)} | {median:.0f} | {upright:.0f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model_dir", type=Path, help="holds config.yaml and reward_model.pt")
    p.add_argument("--rows", nargs="+", default=["true", "rhat"], choices=sorted(ROWS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--steps", type=int, default=250_000)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/frozen_rows"))
    p.add_argument("--workers", type=int, default=1, help="trials at once, one process each")
    p.add_argument("--table", action="store_true", help="only print the table of --out's files")
    p.add_argument(
        "--landscape", action="store_true", help="only compare r_hat with the true reward"
    )
    p.add_argument(
        "--version",
        type=int,
        help="a kept earlier reward model version (reward_model.keep_versions) instead of the "
        "final one; use its own --out",
    )
    p.add_argument("--one", nargs=2, metavar=("ROW", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.landscape:
        torch.set_num_threads(1)
        print(json.dumps(landscape(args.model_dir, args.version), indent=1))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.one:  # a worker process: one trial, one file
        row, seed = args.one[0], int(args.one[1])
        result = trial(args.model_dir, row, seed, args.steps, args.episodes, args.version)
        path = args.out / f"{row}-seed{seed}.json"
        path.with_suffix(".tmp").write_text(json.dumps(result, indent=1))
        path.with_suffix(".tmp").replace(path)
        print(f"{row} seed {seed}: eval {result['eval_return']:.0f} "
              f"({result['wall_s']:.0f} s)", flush=True)  # fmt: skip
        return
    if not args.table:
        # a seed's rows next to each other, so the machine's load hits every row alike
        todo = [(row, seed) for seed in args.seeds for row in args.rows
                if not (args.out / f"{row}-seed{seed}.json").exists()]  # fmt: skip

        def run(job: tuple[str, int]) -> int:
            cmd = ["python", __file__, str(args.model_dir), "--out", str(args.out),
                   "--steps", str(args.steps), "--episodes", str(args.episodes),
                   "--one", job[0], str(job[1])]  # fmt: skip
            cmd += ["--version", str(args.version)] if args.version is not None else []
            return subprocess.run(cmd, check=False).returncode

        with ThreadPoolExecutor(args.workers) as pool:
            failed = [job for job, rc in zip(todo, pool.map(run, todo), strict=True) if rc != 0]
        if failed:
            print(f"failed trials (rerun to retry): {failed}")
    table(args.out, args.rows)


if __name__ == "__main__":
    main()
