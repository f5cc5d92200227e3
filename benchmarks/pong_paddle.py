"""Where a Pong run's paddle goes, and what its reward model pays for where it is.

A diagnostic for a preference run on Pong (benchmarks/README.md, "Pong on this machine"):
from the run's labelled segments (what the policy did when they were cut) and its saved
reward model, it prints

- by policy version: the agent's paddle height (its row in the 84x84 frame; the court spans
  rows 14-76), the share of steps with the paddle in the top rows, points lost per segment,
  and the share of each action taken;
- r_hat per step by paddle height, on steps where no point was won or lost: a reward that
  depends on the paddle's height there is a position bonus the policy can collect by
  parking the paddle, whatever the ball does;
- the random policy's clips (policy version 0): how many distinct ones the labels used.

  python benchmarks/pong_paddle.py RUN_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rlhp.data.segment_store import SegmentStore
from rlhp.preference.ensemble import RewardEnsemble

COURT_ROWS = slice(14, 77)  # inside the white borders of ale-py's 84x84 grey frame
PADDLE_COLUMN = 74  # the agent's (right) paddle; the background there is grey 87
TOP_ROWS = 20
BANDS = [(14, 20), (20, 35), (35, 50), (50, 65), (65, 77)]


def paddle_rows(frames: np.ndarray) -> np.ndarray:
    """Mean row of the agent's paddle in each frame [..., 84, 84] (NaN where unseen)."""
    bright = frames[..., COURT_ROWS, PADDLE_COLUMN] > 100
    rows = np.arange(COURT_ROWS.start, COURT_ROWS.stop)
    count = bright.sum(-1)
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, (bright * rows).sum(-1) / count, np.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a Pong run directory (rlhp_runs/RUN_ID)")
    parser.add_argument("--bins", type=int, default=8, help="policy-version bins")
    args = parser.parse_args()
    torch.set_num_threads(1)
    store = SegmentStore(1, args.run_dir / "segments", read_only=True)
    ensemble = RewardEnsemble.load(args.run_dir / "reward_model.pt")
    segments = store.get(sorted(store.pinned_ids))
    versions = np.array([s.policy_version for s in segments])
    obs = np.stack([s.obs for s in segments])  # [N, L, 4, 84, 84]
    actions = np.stack([s.actions for s in segments])
    true = np.stack([s.true_rewards for s in segments])
    height = paddle_rows(obs[:, :, -1])  # the newest frame of each step's stack
    n_actions = ensemble.spec.n_actions or int(actions.max()) + 1
    print(f"{len(segments)} labelled segments; {int((versions == 0).sum())} from the random "
          "policy (version 0)")  # fmt: skip

    width = max(1, -(-(versions.max() + 1) // args.bins))
    print("policy versions: segments, paddle row, share in the top rows, lost per segment, "
          "share of each action")  # fmt: skip
    for b in range(versions.max() // width + 1):
        m = versions // width == b
        if not m.any():
            continue
        share = np.bincount(actions[m].ravel(), minlength=n_actions) / actions[m].size
        print(f"  {b * width}-{b * width + width - 1}: {int(m.sum())}, "
              f"{np.nanmean(height[m]):.1f}, {np.nanmean(height[m] < TOP_ROWS):.2f}, "
              f"{(true[m] < 0).sum() / m.sum():.2f}, {np.round(share, 2)}")  # fmt: skip

    r_hat = ensemble.predict(obs, actions)
    quiet = true == 0
    print("r_hat per step by paddle row (steps with no point won or lost):")
    for lo, hi in BANDS:
        m = quiet & (height >= lo) & (height < hi)
        if m.any():
            print(f"  rows {lo}-{hi - 1}: {r_hat[m].mean():+.3f} ({int(m.sum())} steps)")
    lost = true < 0
    if lost.any():
        print(f"r_hat at the steps a point was lost: {r_hat[lost].mean():+.3f}")


if __name__ == "__main__":
    main()
