"""Refit the reward model on finished Hopper-v5 runs' own labels with other reward-model
settings, and measure what each fit prices (issue "learning fidelity", item 3).

The measured cause of Hopper's gap is that r_hat prices being healthy at ~40 % of what the
true reward does, relative to speed ("The trap on a frozen reward" in benchmarks/README.md);
with that price corrected, a frozen r_hat trains as well as the true reward. This asks which
reward-model setting learns the price better from the *same* labels, offline, before any
online run: one change per row (``--set FIELD=VALUE`` on the run's own ``reward_model``),
every row on the same runs, label split and seeds.

Per run directory and seed: 20 % of the run's answered labels are held out (by a hash of the
label id, the same for every row), an ensemble with the run's reward-model config plus the
row's overrides is fitted from scratch for ``--epochs`` on the rest, and measured:

- ``heldout_acc``: agreement with the held-out labels (the teacher's answers);
- ``gap_random``: r_hat's upright gap on fresh random-policy steps (mean r_hat of a healthy
  step minus that of an unhealthy one, in units of r_hat's spread among unhealthy steps;
  ``initial_reward_model.py``'s measure), beside the true reward's ``true_gap_random``;
- ``gap_run``: the same on the steps of the run's own labelled segments (on-policy), whose
  share of healthy steps is ``healthy_share_run``.

"Healthy" is Hopper-v5's ``is_healthy``, read from the observation
(``frozen_reward_rows.upright_from_obs``), so the script is for Hopper-v5 runs.

    python benchmarks/refit_reward_model.py RUN_DIR [RUN_DIR ...] --seeds 0 1 2 \\
        [--set use_actions=false] [--epochs 50] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from frozen_reward_rows import upright_from_obs as healthy
from initial_reward_model import gap
from rlhp.config import RunConfig, apply_override, load_config
from rlhp.data.run_labels import RunLabels
from rlhp.preference import InputSpec, PreferenceData, RewardEnsemble
from segment_bytes import segments


def held_out(label_id: str, fraction: float = 0.2) -> bool:
    digest = hashlib.blake2b(f"refit:{label_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < fraction


def segment_returns(ensemble: RewardEnsemble, obs: torch.Tensor, act: torch.Tensor) -> np.ndarray:
    return ensemble.predict(obs.numpy(), act.numpy()).sum(-1)


def load_run(run_dir: Path) -> tuple[RunConfig, PreferenceData]:
    """A finished run's config and its answered labels with their segments."""
    source = RunLabels.open(run_dir)
    data = PreferenceData.from_labels(source.answered(), source.segments)
    return load_config(str(run_dir / "config.yaml")), data


def refit(
    cfg: RunConfig, data: PreferenceData, overrides: list[str], epochs: int, seed: int, test
) -> dict[str, float]:
    """One fit on the run's training labels, measured as the module docstring says."""
    test_index = np.array([held_out(i) for i in data.label_ids])
    train, heldout = (
        data.subset(np.flatnonzero(~test_index)),
        data.subset(np.flatnonzero(test_index)),
    )
    raw = cfg.reward_model.model_dump(mode="json")
    for o in overrides:
        apply_override(raw, o)
    rm = type(cfg.reward_model).model_validate({**raw, "seed": seed})
    torch.manual_seed(seed)
    ensemble = RewardEnsemble(InputSpec(data.obs_1.shape[2:], data.act_1.shape[2:]), rm)
    ensemble.fit(train, epochs=epochs)
    left = segment_returns(ensemble, heldout.obs_1, heldout.act_1)
    right = segment_returns(ensemble, heldout.obs_2, heldout.act_2)
    mu = heldout.mu.numpy()
    decided = mu != 0.5
    acc = float(((left > right) == (mu > 0.5))[decided].mean())
    run_obs = torch.cat([data.obs_1, data.obs_2]).numpy()
    run_act = torch.cat([data.act_1, data.act_2]).numpy()
    test_obs, test_act, test_true = test
    return {
        "heldout_acc": acc,
        "gap_random": gap(ensemble.predict(test_obs, test_act), healthy(test_obs)),
        "true_gap_random": gap(test_true, healthy(test_obs)),
        "gap_run": gap(ensemble.predict(run_obs, run_act), healthy(run_obs)),
        "healthy_share_run": float(healthy(run_obs).mean()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="finished Hopper-v5 run directories")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a reward_model field, e.g. --set use_actions=false")  # fmt: skip
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = p.parse_args()
    torch.set_num_threads(1)
    env = load_config(str(args.runs[0] / "config.yaml")).env
    pool = segments(env.model_copy(update={"num_envs": 1}), 200, seed=10_000)
    test = (np.stack([s.obs for s in pool]), np.stack([s.actions for s in pool]),
            np.stack([s.true_rewards for s in pool]))  # fmt: skip
    rows = []
    for run_dir in args.runs:
        cfg, data = load_run(run_dir)
        for seed in args.seeds:
            m = refit(cfg, data, args.set, args.epochs, seed, test)
            row = {"run": run_dir.name, "set": args.set, "epochs": args.epochs, "seed": seed,
                   **{k: round(v, 3) for k, v in m.items()}}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    keys = ["heldout_acc", "gap_random", "gap_run"]
    print("median " + " ".join(f"{k} {np.median([r[k] for r in rows]):.3f}" for k in keys)
          + f" (true gap on random steps {rows[0]['true_gap_random']})")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
