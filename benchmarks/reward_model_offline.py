"""Offline check of the reward model on real Hopper-v5 data (issue 3, "Must show").

1. Train PPO on the true reward for ``--policy-steps`` (150k by default) with the project's
   trainer to get a partially trained policy (cached under benchmarks/results/).
2. Roll out a uniformly random policy and the partially trained policy and cut the
   rollouts into segments of 1.5 s of simulated time (Christiano et al. appendix A.1).
   Termination on falling is switched off (``terminate_when_unhealthy=False``) so every
   segment has the full length; a fallen hopper simply stops earning the healthy bonus.
3. Put the segments in a SegmentStore, split them into a labelling pool and a test pool,
   ask the synthetic oracle about ``--labels`` (500) random pairs from the labelling pool,
   and commit the labels to a LabelStore (which pins their segments) - the real data path.
4. Fit an ensemble of 3 on those labels (1/e held out) and report: held-out pairwise
   accuracy (validation split), accuracy on fresh pairs of unseen segments (overall and
   within / across the two policies), calibration (ECE), and the Pearson correlation of
   predicted with true segment return on unseen segments.

Pass criteria of the issue: held-out accuracy >= 0.85 and return correlation >= 0.8.

    python benchmarks/reward_model_offline.py            # ~5-10 min on 2 CPU cores
    python benchmarks/reward_model_offline.py --retrain  # ignore the cached policy
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from rlhp.config import load_config
from rlhp.data import LabelStore, SegmentRecord, SegmentStore, commit_labels
from rlhp.preference import (
    InputSpec,
    PreferenceData,
    RewardEnsemble,
    RewardModelConfig,
    SimulatedTeacher,
    to_label_records,
)
from rlhp.preference.metrics import expected_calibration_error, pairwise_accuracy, pearson

RESULTS = Path(__file__).parent / "results"
ENV_ID = "Hopper-v5"


def trained_policy(steps: int, seed: int, retrain: bool):
    """A PPO policy trained on the true reward for ``steps`` env steps (cached on disk)."""
    from rlhp.algos.trainer import OnPolicyTrainer

    cfg = load_config(
        "mujoco_true_reward",
        [f"total_steps={steps}", f"seed={seed}", "device=cpu", "torch_threads=1"],
    )
    trainer = OnPolicyTrainer(cfg)
    cache = RESULTS / f"hopper_ppo_{steps}_seed{seed}.pt"
    if cache.exists() and not retrain:
        trainer.policy.load_state_dict(torch.load(cache, weights_only=True))
        print(f"policy: loaded {cache}")
        return trainer.policy
    t0 = time.time()
    for stats in trainer.train():
        if stats.iteration % 10 == 0 or stats.global_step >= steps:
            print(
                f"  ppo step {stats.global_step:>7d}  mean episode return "
                f"{stats.mean_recent_return:8.1f}  ({time.time() - t0:.0f}s)",
                flush=True,
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    torch.save(trainer.policy.state_dict(), cache)
    trainer.close()
    return trainer.policy


def collect_segments(policy, n_segments: int, seed: int, tag: str) -> list[SegmentRecord]:
    """``n_segments`` consecutive 1.5 s windows of ``policy`` (None: uniform random actions)."""
    from rlhp.nn.acting import make_actor

    env = gym.make(ENV_ID, terminate_when_unhealthy=False)
    L = round(1.5 / env.unwrapped.dt)  # appendix A.1: segments of 1.5 seconds
    actor = None if policy is None else make_actor(policy, np.random.default_rng(seed))
    env.action_space.seed(seed)
    low, high = env.action_space.low, env.action_space.high
    out: list[SegmentRecord] = []
    obs, _ = env.reset(seed=seed)
    episode = t = 0
    while len(out) < n_segments:
        o, a, r, qpos, qvel = [], [], [], [], []
        t_start = t
        for _ in range(L):
            if actor is None:
                action = env.action_space.sample()
            else:
                action = actor.act(obs[None].astype(np.float32))[0][0]
            action = np.clip(action, low, high).astype(np.float32)
            o.append(obs.astype(np.float32))
            a.append(action)
            qpos.append(env.unwrapped.data.qpos.copy())
            qvel.append(env.unwrapped.data.qvel.copy())
            obs, reward, terminated, truncated, _ = env.step(action)
            r.append(reward)
            t += 1
            if terminated or truncated:
                break
        if len(o) == L:
            out.append(
                SegmentRecord(
                    segment_id=f"{tag}/{episode}/{t_start}",
                    run_id="offline-check",
                    env_id=ENV_ID,
                    worker=0,
                    policy_version=0 if policy is None else 1,
                    t_start=t_start,
                    obs=np.stack(o),
                    actions=np.stack(a),
                    true_rewards=np.asarray(r, dtype=np.float32),
                    render_state={"qpos": np.stack(qpos), "qvel": np.stack(qvel)},
                    created_at=time.time(),
                )
            )
        if len(o) < L or terminated or truncated:
            obs, _ = env.reset()
            episode += 1
            t = 0
    env.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy-steps", type=int, default=150_000)
    parser.add_argument("--segments-per-policy", type=int, default=300)
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--test-pairs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a RewardModelConfig field, e.g. --set l2_init=0.01",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()

    policy = trained_policy(args.policy_steps, args.seed, args.retrain)
    random_segments = collect_segments(None, args.segments_per_policy, args.seed + 1, "random")
    trained_segments = collect_segments(policy, args.segments_per_policy, args.seed + 2, "ppo")
    segments = random_segments + trained_segments
    L = segments[0].length
    returns = {s.segment_id: float(s.true_rewards.sum()) for s in segments}
    for name, group in (("random", random_segments), ("ppo", trained_segments)):
        R = np.array([returns[s.segment_id] for s in group])
        print(
            f"segments {name:>6}: {len(group)} x {L} steps, true return {R.mean():.1f} ± {R.std():.1f}"
        )

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(segments))
    n_pool = int(0.7 * len(segments))
    pool = [segments[i] for i in order[:n_pool]]
    test = [segments[i] for i in order[n_pool:]]

    with tempfile.TemporaryDirectory() as tmp:
        store = SegmentStore(capacity=len(segments), directory=Path(tmp) / "segments")
        store.add(segments)
        teacher = SimulatedTeacher()  # perfect oracle: prefers the higher true return
        pairs = []
        for _ in range(args.labels):
            i, j = rng.choice(len(pool), size=2, replace=False)
            pairs.append((pool[i], pool[j]))
        ids = (f"label-{i}" for i in itertools.count())  # deterministic: the split hashes ids
        labels = to_label_records(
            pairs, teacher.label(pairs), teacher, "random", make_id=lambda: next(ids)
        )
        with LabelStore(Path(tmp) / "labels") as label_store:
            commit_labels(labels, store, label_store)
            data = PreferenceData.from_labels(label_store.table(), store)

        spec = InputSpec(segments[0].obs.shape[1:], segments[0].actions.shape[1:])
        overrides = dict(kv.split("=", 1) for kv in args.set)
        cfg = RewardModelConfig.model_validate({"ensemble_size": 3, "seed": args.seed, **overrides})
        ensemble = RewardEnsemble(spec, cfg)
        recent = (np.concatenate([s.obs for s in pool]), np.concatenate([s.actions for s in pool]))
        t_fit = time.time()
        report = ensemble.fit(data, epochs=args.epochs, recent=recent)
        fit_s = time.time() - t_fit

    # fresh pairs of segments no label has touched
    test_pairs = [
        tuple(rng.choice(len(test), size=2, replace=False)) for _ in range(args.test_pairs)
    ]
    left = [test[i] for i, _ in test_pairs]
    right = [test[j] for _, j in test_pairs]
    p_k = ensemble.member_probabilities(
        np.stack([s.obs for s in left]),
        np.stack([s.actions for s in left]),
        np.stack([s.obs for s in right]),
        np.stack([s.actions for s in right]),
    )
    p_1 = p_k.mean(0).numpy()
    mu = np.array(teacher.label(list(zip(left, right, strict=True))), dtype=np.float64)
    kind = np.array(
        [(a.policy_version, b.policy_version) for a, b in zip(left, right, strict=True)]
    )
    within_random = (kind[:, 0] == 0) & (kind[:, 1] == 0)
    within_ppo = (kind[:, 0] == 1) & (kind[:, 1] == 1)
    across = kind[:, 0] != kind[:, 1]
    predicted = ensemble.segment_returns(
        np.stack([s.obs for s in test]), np.stack([s.actions for s in test])
    )
    true = np.array([returns[s.segment_id] for s in test])
    is_ppo = np.array([s.policy_version == 1 for s in test])

    figures = {
        "segment_length_steps": L,
        "labels": args.labels,
        "n_train_labels": report.n_train,
        "n_val_labels": report.n_val,
        "heldout_val_accuracy": report.val_accuracy,
        "heldout_val_ece": report.val_ece,
        "heldout_val_return_correlation": report.val_return_correlation,
        "test_pair_accuracy": pairwise_accuracy(p_1, mu),
        "test_pair_accuracy_within_random": pairwise_accuracy(
            p_1[within_random], mu[within_random]
        ),
        "test_pair_accuracy_within_ppo": pairwise_accuracy(p_1[within_ppo], mu[within_ppo]),
        "test_pair_accuracy_across_policies": pairwise_accuracy(p_1[across], mu[across]),
        "test_pair_ece": expected_calibration_error(p_1, mu),
        "test_return_pearson": pearson(predicted, true),
        "test_return_pearson_random_only": pearson(predicted[~is_ppo], true[~is_ppo]),
        "test_return_pearson_ppo_only": pearson(predicted[is_ppo], true[is_ppo]),
        "final_l2": [round(x, 6) for x in ensemble.l2],
        "final_loss_ratio": [round(m.ratio, 3) for m in report.last],
        "reward_fit_seconds": round(fit_s, 1),
        "total_seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reward_model_offline.json").write_text(json.dumps(figures, indent=2))
    ok_acc = figures["heldout_val_accuracy"] >= 0.85
    ok_corr = figures["test_return_pearson"] >= 0.8
    print(
        f"held-out accuracy {figures['heldout_val_accuracy']:.3f} (>= 0.85: "
        f"{'PASS' if ok_acc else 'FAIL'}); return correlation "
        f"{figures['test_return_pearson']:.3f} (>= 0.8: {'PASS' if ok_corr else 'FAIL'})"
    )
    raise SystemExit(0 if ok_acc and ok_corr else 1)


if __name__ == "__main__":
    main()
