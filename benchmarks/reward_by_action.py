"""Does a run's reward model pay for an action itself? A diagnostic for discrete actions.

An r_hat that reads the action (``reward_model.use_actions``) can learn a constant bonus for
one action from a few hundred labels; the policy then collapses onto that action, whatever
it does to the game. That happened on Pong (benchmarks/README.md, "Pong learns on this
machine"). This script loads a run's saved reward model and its labelled segments, scores
every step once with each action substituted for the one taken, and prints:

- the mean r_hat per substituted action, and the spread across actions against r_hat's
  own variance (a spread near zero: the action hardly matters);
- how often each action is r_hat's best one (one action best at nearly every step: a
  constant bonus the policy can collect by repeating it);
- mean r_hat at steps with a true reward of -1, +1 and 0 (what the model did learn);
- how often the policy took each action, by the segments' policy version (the collapse).

  python benchmarks/reward_by_action.py RUN_DIR [--segments 150]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rlhp.data.segment_store import SegmentStore
from rlhp.preference.ensemble import RewardEnsemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (rlhp_runs/RUN_ID)")
    parser.add_argument("--segments", type=int, default=150, help="labelled segments scored")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ensemble = RewardEnsemble.load(args.run_dir / "reward_model.pt")
    n_actions = ensemble.spec.n_actions
    if n_actions is None:
        raise SystemExit("reward_by_action.py: the run's actions are continuous; nothing to do")
    store = SegmentStore(1, args.run_dir / "segments", read_only=True)
    ids = sorted(store.pinned_ids)
    rng = np.random.default_rng(0)
    chosen = sorted(rng.choice(len(ids), min(args.segments, len(ids)), replace=False))
    segments = store.get([ids[i] for i in chosen])
    obs = np.stack([s.obs for s in segments])
    taken = np.stack([s.actions for s in segments])
    true = np.stack([s.true_rewards for s in segments])

    by_action = np.stack([ensemble.predict(obs, np.full_like(taken, a)) for a in range(n_actions)])
    r_hat = ensemble.predict(obs, taken)
    print(f"{len(segments)} labelled segments of {obs.shape[1]} steps; "
          f"use_actions={ensemble.cfg.use_actions}")  # fmt: skip
    print("mean r_hat if every step took action a:", np.round(by_action.mean(axis=(1, 2)), 3))
    print(f"variance across actions (mean over steps): {by_action.var(axis=0).mean():.4f}; "
          f"variance of r_hat: {r_hat.var():.4f}")  # fmt: skip
    best = np.bincount(by_action.argmax(axis=0).ravel(), minlength=n_actions) / r_hat.size
    print("share of steps where action a is r_hat's best:", np.round(best, 3))
    for name, mask in (("-1", true < 0), ("+1", true > 0), ("0", true == 0)):
        mean = f"{r_hat[mask].mean():.3f}" if mask.any() else "n/a"
        print(f"mean r_hat at steps with true reward {name}: {mean} ({int(mask.sum())} steps)")

    every = store.get(ids)  # one read of the labelled segments (memory-mapped)
    versions = np.array([s.policy_version for s in every])
    actions = np.stack([s.actions for s in every])
    width = max(1, -(-(versions.max() + 1) // 8))  # eight bins of policy versions
    print("policy versions: labelled segments, share of each action taken")
    for b in range(versions.max() // width + 1):
        m = versions // width == b
        if m.any():
            share = np.bincount(actions[m].ravel(), minlength=n_actions) / actions[m].size
            print(f"  {b * width}-{b * width + width - 1}: {int(m.sum())}, {np.round(share, 2)}")


if __name__ == "__main__":
    main()
