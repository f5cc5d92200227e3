"""Which clips a finished Hopper-v5 preference run compared, quarter by quarter of its labels
(issue "learning fidelity", item 3: why preferences trail the true reward).

The healthy price r_hat learns is set by the labels (``refit_reward_model.py``): a pair
teaches being healthy only where the two clips differ in healthy steps. This reads a
finished run's answered labels, in the order they were given, and reports per quarter:

- ``healthy``: the share of the compared clips' steps in which the hopper is healthy
  (Hopper-v5's ``is_healthy``, from the observation);
- the kinds of pairs: both clips fallen throughout, exactly one with a healthy step, both
  with some, and the median gap in true return within each kind;
- ``lag``: how many policy versions older a compared clip is than the newest clip compared
  so far (median and 90th percentile), i.e. how far back in the segment buffer the
  candidates reach.

  python benchmarks/labelled_clips.py RUN_DIR [RUN_DIR ...] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from frozen_reward_rows import upright_from_obs as healthy
from rlhp.data.run_labels import RunLabels
from rlhp.preference import PreferenceData


def quarters(run_dir: Path) -> list[dict[str, float]]:
    """The module docstring's measures for each quarter of ``run_dir``'s labels."""
    source = RunLabels.open(run_dir)
    labels = source.answered().sort_by("created_at")
    data = PreferenceData.from_labels(labels, source.segments)
    order = {label_id: i for i, label_id in enumerate(labels.column("label_id").to_pylist())}
    rank = np.array([order[i] for i in data.label_ids])
    data = data.subset(np.argsort(rank))  # answered labels with a preference, in time order
    kept = labels.filter(np.isin(labels.column("label_id").to_numpy(), data.label_ids))
    ids = sorted({*kept.column("left").to_pylist(), *kept.column("right").to_pylist()})
    segments = source.segments.table(ids)
    version = dict(zip(segments.column("segment_id").to_pylist(),
                       segments.column("policy_version").to_pylist(), strict=True))  # fmt: skip
    pairs = zip(kept.column("left").to_pylist(), kept.column("right").to_pylist(), strict=True)
    versions = np.array([[version[left], version[right]] for left, right in pairs])
    newest = np.maximum.accumulate(versions.max(1))
    lag = newest[:, None] - versions
    h1 = healthy(data.obs_1.numpy()).mean(-1)
    h2 = healthy(data.obs_2.numpy()).mean(-1)
    gap = (data.true_return_1 - data.true_return_2).abs().numpy()
    kinds = {"fallen_fallen": (h1 == 0) & (h2 == 0), "one_healthy": (h1 > 0) ^ (h2 > 0),
             "both_some": (h1 > 0) & (h2 > 0)}  # fmt: skip
    rows = []
    for q, part in enumerate(np.array_split(np.arange(len(data)), 4)):
        row = {"quarter": q, "labels": len(part),
               "healthy": float(np.concatenate([h1[part], h2[part]]).mean()),
               "lag_median": float(np.median(lag[part])),
               "lag_p90": float(np.percentile(lag[part], 90))}  # fmt: skip
        for name, mask in kinds.items():
            row[name] = float(mask[part].mean())
            in_kind = gap[part][mask[part]]
            row[f"{name}_return_gap"] = float(np.median(in_kind)) if in_kind.size else float("nan")
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="finished Hopper-v5 run directories")
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = p.parse_args()
    out = {}
    for run_dir in args.runs:
        out[run_dir.name] = rows = quarters(run_dir)
        print(f"{run_dir.name}")
        print("  quarter | labels | healthy steps | fallen-fallen | one healthy | both some | "
              "return gap ff / one / both | version lag median (p90)")  # fmt: skip
        for r in rows:
            print(
                f"  {r['quarter']} | {r['labels']} | {r['healthy']:.2f} | "
                f"{r['fallen_fallen']:.2f} | {r['one_healthy']:.2f} | {r['both_some']:.2f} | "
                f"{r['fallen_fallen_return_gap']:.0f} / {r['one_healthy_return_gap']:.0f} / "
                f"{r['both_some_return_gap']:.0f} | {r['lag_median']:.0f} ({r['lag_p90']:.0f})"
            )
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
