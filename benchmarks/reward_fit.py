"""How well a reward model fits a run's labels: per-epoch losses, accuracy and output spread.

A diagnostic for a preference run whose policy does not learn (benchmarks/README.md, "Pong
on this machine"): it reads the run's labels and labelled segments, trains a fresh reward
ensemble on the first N labels (by default the initial ones, asked of the random policy)
with the run's reward-model settings plus any ``--set reward_model.FIELD=VALUE``, and
prints after each epoch, for member 0 and the mean over members:

- the Bradley-Terry loss on its training pairs and on the held-out pairs (ln 2 = 0.693 is a
  model that says 0.5 to every pair), and the held-out accuracy;
- the spread of the raw per-step output over the labelled steps (before the per-fit
  normalization scales it to std 1): a model whose outputs barely vary has learned nothing,
  and the normalization then magnifies whatever it varies with;
- the Pearson correlation of the predicted clip returns with the true ones.

  python benchmarks/reward_fit.py RUN_DIR --epochs 20 --labels 500 [--set reward_model.learning_rate=0.001]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from rlhp.config import apply_override, validate_config
from rlhp.data.label_store import read_labels
from rlhp.data.segment_store import SegmentStore
from rlhp.preference.dataset import PreferenceData
from rlhp.preference.ensemble import RewardEnsemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (rlhp_runs/RUN_ID)")
    parser.add_argument(
        "--labels",
        type=int,
        default=None,
        help="the first N labels (default: the run's initial_labels)",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="reward_model.FIELD=VALUE"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    for override in args.overrides:
        apply_override(data, override)
    cfg = validate_config(data)
    n = args.labels or cfg.label_schedule.initial_labels
    labels = read_labels(args.run_dir / "labels").slice(0, n)
    store = SegmentStore(1, args.run_dir / "segments", read_only=True)
    pairs = PreferenceData.from_labels(labels, store)
    ensemble = RewardEnsemble(
        RewardEnsemble.load(args.run_dir / "reward_model.pt").spec, cfg.reward_model
    )
    train_index, val_index = pairs.split(
        cfg.reward_model.validation_fraction, cfg.reward_model.seed
    )
    rm = cfg.reward_model
    print(
        f"{len(pairs)} labelled pairs ({len(train_index)} train, {len(val_index)} held out); "
        f"lr {rm.learning_rate}, batch {rm.batch_size}, dropout {rm.dropout}, batch norm "
        f"{rm.cnn_batch_norm}, L2 {rm.l2_init}, {rm.ensemble_size} members; one fit of "
        f"{args.epochs} epochs, as the run's pre-training"
    )
    start = time.perf_counter()
    report = ensemble.fit(pairs, epochs=args.epochs)
    seconds = time.perf_counter() - start
    print("epoch | train loss, per member | held-out loss, per member | L2 weight")
    for epoch, members in enumerate(report.history, 1):
        if epoch <= 5 or epoch % max(1, args.epochs // 10) == 0 or epoch == args.epochs:
            print(
                f"{epoch} | "
                + " | ".join(
                    " ".join(f"{getattr(m, f):.4f}" for m in members)
                    for f in ("train_loss", "val_loss")
                )
                + f" | {members[0].l2:.2g}"
            )
    acc, std, corr = _measure(ensemble, pairs, val_index)
    print(
        f"after {args.epochs} epochs ({seconds:.0f} s): held-out accuracy per member {acc}; "
        f"raw per-step std per member {std}; corr(R_hat, true return) per member {corr}"
    )
    print("(ln 2 = 0.6931 is the loss of a model that says 0.5 to every pair)")


def _measure(e: RewardEnsemble, d: PreferenceData, val: np.ndarray) -> tuple[str, str, str]:
    """Per member: held-out accuracy on decided pairs, raw per-step std, corr with true R."""
    r1, r2 = e.member_rewards(d.obs_1, d.act_1), e.member_rewards(d.obs_2, d.act_2)  # [K, N, L]
    R1, R2 = r1.sum(-1), r2.sum(-1)
    decided = val[(d.mu[val] != 0.5).numpy()]
    true = torch.cat([d.true_return_1, d.true_return_2]).numpy()
    acc = ((R1[:, decided] > R2[:, decided]).float() == d.mu[decided]).float().mean(1)
    std = torch.cat([r1, r2], dim=1).flatten(1).std(1)
    corr = [np.corrcoef(torch.cat([a, b]).numpy(), true)[0, 1] for a, b in zip(R1, R2, strict=True)]
    return tuple(" ".join(f"{float(v):.3g}" for v in x) for x in (acc, std, corr))  # type: ignore[return-value]


if __name__ == "__main__":
    main()
