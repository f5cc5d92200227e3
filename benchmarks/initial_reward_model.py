"""What the initial reward model knows about staying upright on Hopper-v5 (issue "learning
fidelity", item 3: why preference runs leave the falling regime later than RL).

A preference run's first reward model is fitted on the initial labels (appendix A.1: 25 %
of the budget, asked about random-policy segments). The ``mujoco_synthetic`` preset asks
its 175 initial labels about the segments of one random-policy rollout (2048 steps, ~40
segments of 50 steps). With the paper's fixed-length episodes a random hopper falls within
~20 steps and lies for the rest of its 1000 steps, so about one segment per episode shows
it upright; every other pair differs only by how fast the fallen body slides.

This script builds that first reward model the way the runtime does (the preset's env
changes, ``make_vector_env``, ``SegmentCutter``, the synthetic oracle, the label store and
the preset's ``RewardEnsemble``), from pools of random-policy segments of different sizes
and segment lengths, and measures on fresh random-policy episodes:

- ``upright_gap``: mean r_hat of an upright step minus that of a fallen step, in units of
  the per-step r_hat spread among fallen steps (the true reward's own gap, 2 per step
  against the fallen steps' velocity spread, is printed as ``true`` for reference);
- ``acc_health``: oracle agreement on fresh pairs where exactly one segment has upright
  steps, and ``acc_fallen`` on pairs of two fallen segments.

    python benchmarks/initial_reward_model.py                  # ~3 min on 2 cores
    python benchmarks/initial_reward_model.py --seeds 0 1 2 --epochs 50
    python benchmarks/initial_reward_model.py --rows seg50_pool40 --env height_reward=1
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from rlhp.config import load_config
from rlhp.data import LabelStore, SegmentRecord, SegmentStore, commit_labels
from rlhp.preference import (
    InputSpec,
    PreferenceData,
    RewardEnsemble,
    SimulatedTeacher,
    to_label_records,
)
from segment_bytes import segments


def random_segments(preset: str, overrides: list[str], n: int, seed: int) -> list[SegmentRecord]:
    """``n`` random-policy segments of the preset's env (``segment_bytes.segments``)."""
    return segments(load_config(preset, overrides).env, n, seed)


def is_upright(qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    """Hopper-v5's ``is_healthy`` per step, from physics states [T, nq] and [T, nv]."""
    state = np.concatenate([qpos, qvel], axis=1)[:, 2:]
    z, angle = qpos[:, 1], qpos[:, 2]
    return (np.abs(state) < 100).all(1) & (z > 0.7) & (np.abs(angle) < 0.2)


def upright(segment: SegmentRecord) -> np.ndarray:
    """``is_upright`` for each step of a segment, from its recorded physics state."""
    return is_upright(segment.render_state["qpos"], segment.render_state["qvel"])


def fit_initial(
    pool: list[SegmentRecord],
    labels: int,
    preset: str,
    rm_overrides: list[str],
    epochs: int,
    seed: int,
    tmp: Path,
    teacher_overrides: tuple[str, ...] = (),
) -> RewardEnsemble:
    """The reward model fitted on ``labels`` answers of the teacher (the preset's, with
    ``teacher_overrides``: the oracle by default) about random pairs of ``pool``."""
    rng = np.random.default_rng(seed)
    store = SegmentStore(capacity=len(pool), directory=tmp / "segments")
    store.add(pool)
    pairs = [tuple(pool[i] for i in rng.choice(len(pool), 2, replace=False)) for _ in range(labels)]
    teacher_cfg = load_config(preset, [f"teacher.{kv}" for kv in teacher_overrides]).teacher
    teacher = SimulatedTeacher(teacher_cfg.model_copy(update={"seed": seed}))
    ids = (f"label-{i}" for i in itertools.count())
    records = to_label_records(
        pairs, teacher.label(pairs), teacher, "random", make_id=lambda: next(ids)
    )
    with LabelStore(tmp / "labels") as label_store:
        commit_labels(records, store, label_store)
        data = PreferenceData.from_labels(label_store.table(), store)
    rm = load_config(preset, [f"reward_model.{kv}" for kv in rm_overrides]).reward_model
    rm = rm.model_copy(update={"seed": seed})
    ensemble = RewardEnsemble(InputSpec(pool[0].obs.shape[1:], pool[0].actions.shape[1:]), rm)
    ensemble.fit(data, epochs=epochs)
    return ensemble


def gap(values: np.ndarray, is_upright: np.ndarray) -> float:
    fallen = values[~is_upright]
    return float((values[is_upright].mean() - fallen.mean()) / (fallen.std() + 1e-8))


def measure(ensemble: RewardEnsemble, test: list[SegmentRecord], seed: int) -> dict[str, float]:
    obs = np.stack([s.obs for s in test])
    act = np.stack([s.actions for s in test])
    r_hat = ensemble.predict(obs, act).reshape(-1)
    up = [upright(s) for s in test]
    is_up = np.concatenate(up)
    has_up = np.array([u.any() for u in up])
    R_true = np.array([s.true_rewards.sum() for s in test])
    R_hat = r_hat.reshape(len(test), -1).sum(1)
    rng = np.random.default_rng(seed + 1000)
    i, j = rng.integers(len(test), size=(2, 20_000))
    keep = (i != j) & (R_true[i] != R_true[j])
    i, j = i[keep], j[keep]
    agree = (R_hat[i] > R_hat[j]) == (R_true[i] > R_true[j])
    health = has_up[i] != has_up[j]
    fallen = ~has_up[i] & ~has_up[j]
    return {
        "upright_gap": gap(r_hat, is_up),
        "acc_health": float(agree[health].mean()),
        "acc_fallen": float(agree[fallen].mean()),
        "true_upright_gap": gap(np.concatenate([s.true_rewards for s in test]), is_up),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="mujoco_synthetic")
    p.add_argument("--labels", type=int, default=175, help="initial labels (the preset's)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rows", nargs="+", help="only these rows (default: all)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a reward_model field, e.g. --set l2_adapt=false",
    )
    p.add_argument(
        "--teacher",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a teacher field, e.g. --teacher kind=stoc --teacher beta=1",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override an env field, e.g. --env height_reward=1 (the oracle's reward too)",
    )
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = p.parse_args()
    torch.set_num_threads(1)
    # (name, segment length, pool size): the preset's one rollout, 2 segments per label
    # (label_schedule.initial_segments_per_label=2), 1.5 s clips and 25-step clips from one
    # rollout.
    rows = [
        ("seg50_pool40", 50, 40),
        ("seg50_pool350", 50, 350),
        ("seg188_pool10", 188, 10),
        ("seg25_pool80", 25, 80),  # half-length clips, one rollout
    ]
    results: list[dict[str, object]] = []
    for name, length, size in rows:
        if args.rows and name not in args.rows:
            continue
        overrides = [f"env.segment_steps={length}", "env.render_clips=true"]
        overrides += [f"env.{kv}" for kv in args.env]
        for seed in args.seeds:
            pool = random_segments(args.preset, overrides, size, seed)
            test = random_segments(args.preset, overrides, 4000 // length * 20, 10_000 + seed)
            with tempfile.TemporaryDirectory() as tmp:
                ensemble = fit_initial(
                    pool, args.labels, args.preset, args.set, args.epochs, seed, Path(tmp),
                    tuple(args.teacher),
                )  # fmt: skip
            m = measure(ensemble, test, seed)
            row = {
                "row": name,
                "set": args.set,
                "teacher": args.teacher,
                "env": args.env,
                "epochs": args.epochs,
                "seed": seed,
                "upright_in_pool": int(sum(upright(s).any() for s in pool)),
                **{k: round(v, 3) for k, v in m.items()},
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
