"""Where the time of one PPO update goes on the CPU (issue "end-to-end speed", item 4: profile
the update phase first).

The update of ``mujoco_true_reward_ppo`` (Hopper-v5, 2048 steps x 1 env, 10 epochs x 32
minibatches of 64, 64x64 tanh actor and critic) on a real rollout: ``ppo_update``'s loop
timed piece by piece with the clock (the CPU runs synchronously, so each piece's time is its
own), single-threaded as the learner actor runs it:

- ``shuffle + gather``: the epoch's permutation and ``batch[idx]`` for each minibatch,
- ``forward``: eq. 9's loss (``ppo_loss``: distribution, log-probs, ratio, value, entropy),
- ``backward``, ``clip_grad_norm``, ``optimizer.step``, ``zero_grad + stats``.

- ``closed-form gradient``: ``rlhp.algos.ppo_closed_form.ppo_gradient``, forward and
  backward in one pass without autograd (``learner.ppo.closed_form_gradient``, rlhp's default
  since 2026-12-06), in place of ``forward`` and ``backward``.

- ``lean step``: ``rlhp.algos.lean_step``: torch's clip-by-norm and fused Adam kernels
  called directly, without ``clip_grad_norm_``'s and ``Optimizer.step``'s per-call Python
  (rlhp's since 2026-12-06; the same numbers, bit for bit).

Each variant (rlhp's: closed-form gradient and the lean step on ``fused=True`` Adam; the
same through torch's ``clip_grad_norm_`` and ``Adam.step``, rlhp's before 2026-12-06;
autograd with the fused Adam; autograd with ``learner.ppo.fused_adam=false``'s
``foreach=True``, rlhp's before 2026-12-05) runs the same update from the same weights,
``--repeats`` times interleaved; medians are reported.

  python benchmarks/ppo_update_profile.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections import defaultdict

import numpy as np
import torch
from torch import nn

from rlhp.algos.lean_step import LeanFusedAdam, clip_grad_norm
from rlhp.algos.ppo import ppo_loss
from rlhp.algos.ppo_closed_form import normalized_batch, ppo_gradient
from rlhp.algos.trainer import OnPolicyTrainer
from rlhp.config import load_config
from rlhp.nn.acting import make_actor

PIECES = ("shuffle + gather", "forward", "backward", "closed-form gradient", "clip_grad_norm",
          "optimizer.step", "zero_grad + stats")  # fmt: skip
# name -> (Adam's keyword arguments, closed-form gradient, lean clip and step)
VARIANTS = {"closed form, lean step (rlhp's)": ({"fused": True}, True, True),
            "closed form, fused": ({"fused": True}, True, False),
            "autograd, fused": ({"fused": True}, False, False),
            "autograd, foreach": ({"foreach": True}, False, False)}  # fmt: skip


def timed_update(policy, optimizer, batch, cfg, generator, closed_form, lean) -> dict[str, float]:
    """``rlhp.algos.ppo.ppo_update``'s loop with a clock around each piece."""
    t: dict[str, float] = defaultdict(float)
    if closed_form:
        c = time.perf_counter()
        batch = normalized_batch(policy, batch)
        t["shuffle + gather"] += time.perf_counter() - c
    B = len(batch)
    mb = max(1, B // cfg.num_minibatches)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    totals: dict[str, torch.Tensor] = {}
    step = LeanFusedAdam(optimizer) if lean else None
    for _ in range(cfg.update_epochs):
        c = time.perf_counter()
        perm = torch.randperm(B, generator=generator)
        t["shuffle + gather"] += time.perf_counter() - c
        for start in range(0, B - mb + 1, mb):
            c0 = time.perf_counter()
            minibatch = batch[perm[start : start + mb]]
            c1 = time.perf_counter()
            if closed_form:
                stats = ppo_gradient(policy, minibatch, cfg)
                c2 = c3 = c4 = time.perf_counter()
                t["closed-form gradient"] += c4 - c1
            else:
                loss, stats = ppo_loss(policy, minibatch, cfg)
                c2 = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                c3 = time.perf_counter()
                loss.backward()
                c4 = time.perf_counter()
                t["forward"] += c2 - c1
                t["backward"] += c4 - c3
            if step is not None:
                clip_grad_norm([p.grad for p in params], cfg.max_grad_norm)
                c5 = time.perf_counter()
                step.step()
            else:
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                c5 = time.perf_counter()
                optimizer.step()
            c6 = time.perf_counter()
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
            c7 = time.perf_counter()
            t["shuffle + gather"] += c1 - c0
            t["clip_grad_norm"] += c5 - c4
            t["optimizer.step"] += c6 - c5
            t["zero_grad + stats"] += (c3 - c2) + (c7 - c6)
    return dict(t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--preset", default="mujoco_true_reward_ppo")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.preset, ["learner.algo=ppo"])
    trainer = OnPolicyTrainer(cfg)
    rollout = trainer.collector.collect(
        make_actor(trainer.policy, np.random.default_rng(0)), cfg.learner.rollout_steps
    )
    learner = trainer.learner
    batch = learner.make_batch(rollout, learner.rewards_for(rollout))
    start_policy = copy.deepcopy(learner.policy.state_dict())
    lr = cfg.learner.ppo.learning_rate
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    for repeat in range(args.repeats):
        names = list(VARIANTS) if repeat % 2 == 0 else list(reversed(VARIANTS))
        for name in names:
            learner.policy.load_state_dict(start_policy)
            adam, closed_form, lean = VARIANTS[name]
            opt = torch.optim.Adam(learner.policy.parameters(), lr=lr, eps=1e-5, **adam)
            gen = torch.Generator().manual_seed(repeat)
            runs[name].append(
                timed_update(learner.policy, opt, batch, cfg.learner.ppo, gen, closed_form, lean)
            )
    trainer.close()
    n_mb = cfg.learner.ppo.update_epochs * cfg.learner.ppo.num_minibatches
    print(f"one PPO update: {len(batch)} samples, {n_mb} minibatches, 1 thread; "
          f"median of {args.repeats} (ms per update, share)")  # fmt: skip
    header = "| piece | " + " | ".join(VARIANTS) + " |"
    print(header + "\n|---|" + "---:|" * len(VARIANTS))
    medians = {name: {k: statistics.median(r.get(k, 0.0) for r in rs) for k in PIECES}
               for name, rs in runs.items()}  # fmt: skip
    for piece in PIECES:
        cells = []
        for name in VARIANTS:
            total = sum(medians[name].values())
            cells.append(f"{medians[name][piece] * 1e3:.0f} ({medians[name][piece] / total:.0%})")
        print(f"| {piece} | " + " | ".join(cells) + " |")
    totals = {name: sum(m.values()) for name, m in medians.items()}
    print("| **total** | " + " | ".join(f"**{totals[n] * 1e3:.0f}**" for n in VARIANTS) + " |")
    base = totals["autograd, foreach"]
    print("speed-up against autograd with the foreach Adam (rlhp's before 2026-12-05): "
          + ", ".join(f"{n} {base / totals[n]:.2f}x" for n in VARIANTS))  # fmt: skip


if __name__ == "__main__":
    main()
