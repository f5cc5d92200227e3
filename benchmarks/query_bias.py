"""Which clips query selection picks out of the candidates it is given, on a finished Hopper-v5
preference run (issue "learning fidelity", item 3: why preferences trail the true reward).

``labelled_clips.py`` shows the labelled clips of some runs stay fallen while the policy
stands; the ring of candidates is not kept on disk, so this rebuilds one: the run's final
policy acts (sampling, as in training) in the run's env for ``--steps`` steps, its clips are
cut as the rollout workers cut them, and ``--rounds`` labelling rounds each draw
``query.candidate_multiplier`` x ``--queries`` candidate pairs uniformly from those clips (as
``SegmentStore.sample_pairs`` does) and keep ``--queries`` of them by each strategy, scored
with the run's final reward model. Per strategy: the share of healthy steps in the chosen
clips and the share of chosen pairs in which both clips are fallen throughout, beside the
same for all candidates. A strategy that picks fallen clips from a standing policy's
candidates shows as a lower healthy share than the candidates'.

  python benchmarks/query_bias.py RUN_DIR [RUN_DIR ...] [--steps 20000] [--queries 5]
      [--rounds 40] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from frozen_reward_rows import upright_from_obs as healthy
from rlhp.checkpoints import REWARD_MODEL, RunCheckpoint
from rlhp.config import validate_config
from rlhp.envs import make_vector_env, segment_length
from rlhp.nn.acting import make_actor
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.query import DisagreementSelector, EntropySelector, RandomSelector
from rlhp.runtime import report
from segment_bytes import segments


def policy_clips(run_dir: Path, steps: int, seed: int) -> tuple[list, RewardEnsemble, int]:
    """Clips of the run's final policy (sampling) over ``steps`` steps, its final reward
    model, and the run's candidate multiplier."""
    cfg = validate_config(yaml.safe_load((run_dir / "config.yaml").read_text()))
    checkpoint = RunCheckpoint.load(run_dir)
    if checkpoint is None:
        raise SystemExit(f"{run_dir}: needs a finished preference run (reward model, checkpoint)")
    ensemble = RewardEnsemble.load(run_dir / REWARD_MODEL)
    actor = make_actor(report.load_policy(cfg, checkpoint.policy), np.random.default_rng(seed))
    env_cfg = cfg.env.model_copy(update={"num_envs": 1})
    env = make_vector_env(env_cfg, seed)
    n_clips = steps // segment_length(env_cfg, env.dt)
    env.close()
    clips = segments(env_cfg, n_clips, seed, act=lambda obs: actor.act(obs)[0])
    return clips, ensemble, cfg.query.candidate_multiplier


def describe(pairs: list) -> dict[str, float]:
    h = np.array([[healthy(np.asarray(c.obs)).mean() for c in pair] for pair in pairs])
    return {"healthy": float(h.mean()), "fallen_fallen": float((h.max(1) == 0).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "runs", type=Path, nargs="+", help="finished Hopper-v5 preference run directories"
    )
    p.add_argument("--steps", type=int, default=20_000, help="policy steps to cut clips from")
    p.add_argument("--queries", type=int, default=5, help="pairs kept per round")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for run_dir in args.runs:
        clips, ensemble, multiplier = policy_clips(run_dir, args.steps, args.seed)
        rng = np.random.default_rng(args.seed)
        selectors = {"disagreement": DisagreementSelector(), "entropy": EntropySelector(),
                     "random": RandomSelector(args.seed)}  # fmt: skip
        chosen: dict[str, list] = {"candidates": [], **{name: [] for name in selectors}}
        for _ in range(args.rounds):
            draws = [rng.choice(len(clips), size=2, replace=False)
                     for _ in range(multiplier * args.queries)]  # fmt: skip
            candidates = [(clips[i], clips[j]) for i, j in draws]
            chosen["candidates"] += candidates
            for name, selector in selectors.items():
                chosen[name] += selector.select(candidates, ensemble, args.queries)
        row = {"run": run_dir.name, "clips": len(clips), "multiplier": multiplier,
               **{name: describe(pairs) for name, pairs in chosen.items()}}  # fmt: skip
        rows.append(row)
        print(f"{run_dir.name}: {len(clips)} clips, {args.rounds} rounds of "
              f"{multiplier * args.queries} candidates -> {args.queries} pairs")  # fmt: skip
        for name in chosen:
            print(f"  {name:12s} healthy steps {row[name]['healthy']:.2f}, "
                  f"both clips fallen {row[name]['fallen_fallen']:.2f}")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
