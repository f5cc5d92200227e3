"""Gradient clipping and torch's fused Adam step, without their per-call Python.

A PPO update on the CPU takes 160-320 minibatch steps of about a millisecond; torch's
``clip_grad_norm_`` and ``Adam.step`` spend ~0.12 ms each of it on argument checks, grouping
tensors by device and dtype, and hooks (``benchmarks/README.md``, "Where one PPO update's time
goes"). For the case the learner runs (one parameter group of CPU float32 tensors, Adam with
``fused=True``) the same kernels are called here directly, in the same order with the same
arguments, so the numbers are those of torch's own path, bit for bit
(``tests/algos/test_lean_step.py``).
"""

from __future__ import annotations

import torch


@torch.no_grad()
def clip_grad_norm(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for one device and dtype: scale ``grads`` in place
    so that their joint 2-norm is at most ``max_norm``; return the norm before clipping."""
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
    return total


class LeanFusedAdam:
    """``optimizer.step()`` for a ``torch.optim.Adam(..., fused=True)`` with one parameter
    group on the CPU, on the optimizer's own state (so ``state_dict`` and checkpoints are
    unchanged). Torch's step makes the state on its first call; ``step`` defers to it until
    then. Build one per update: it reads the state tensors once."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.group = optimizer.param_groups[0]
        self.params: list[torch.Tensor] = list(self.group["params"])
        self.ready = self._read_state()

    def _read_state(self) -> bool:
        """Take the state tensors from the optimizer; False while it has none yet."""
        state = [self.optimizer.state.get(p, {}) for p in self.params]
        if not all("step" in s for s in state):
            return False
        self.exp_avgs = [s["exp_avg"] for s in state]
        self.exp_avg_sqs = [s["exp_avg_sq"] for s in state]
        self.steps = [s["step"] for s in state]
        return True

    @staticmethod
    def supports(optimizer: torch.optim.Optimizer) -> bool:
        """Whether ``optimizer`` is the case this class reproduces exactly."""
        if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
            return False
        g = optimizer.param_groups[0]
        plain = not (g["amsgrad"] or g["maximize"] or g["capturable"] or g["differentiable"])
        tensors = g["params"]
        same = all(p.device.type == "cpu" and p.dtype == torch.float32 for p in tensors)
        return (
            bool(g["fused"])
            and plain
            and g["weight_decay"] == 0
            and same
            and not any(isinstance(v, torch.Tensor) for v in (g["lr"], *g["betas"]))
        )

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step on the parameters' ``.grad`` (every parameter must have one)."""
        if not self.ready:
            self.optimizer.step()
            self.ready = self._read_state()
            return
        g = self.group
        beta1, beta2 = g["betas"]
        torch._foreach_add_(self.steps, 1)
        torch._fused_adam_(
            self.params,
            [p.grad for p in self.params],
            self.exp_avgs,
            self.exp_avg_sqs,
            [],
            self.steps,
            amsgrad=False,
            lr=g["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=g["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )
