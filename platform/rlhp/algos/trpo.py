"""Trust Region Policy Optimization (Schulman et al. 2015) with the value function fitted in
a trust region as in GAE (Schulman et al. 2016, section 5).

Policy step:  maximize g^T s  subject to  1/2 s^T F s <= delta, where g is the gradient of the
surrogate L(theta) = E[pi_theta(a|s) / pi_old(a|s) A_hat] and F the Fisher matrix (the Hessian
of the mean KL(pi_old || pi_theta)). s = F^-1 g by conjugate gradient on Fisher-vector products,
scaled to the boundary, then a backtracking line search that accepts the first step that keeps
KL <= delta and improves the surrogate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rlhp.algos.batch import Batch
from rlhp.algos.config import TRPOConfig
from rlhp.nn.policies import ActorCritic


def flat_params(params: list[nn.Parameter]) -> torch.Tensor:
    return torch.cat([p.data.reshape(-1) for p in params])


def set_flat_params(params: list[nn.Parameter], flat: torch.Tensor) -> None:
    i = 0
    for p in params:
        n = p.numel()
        p.data.copy_(flat[i : i + n].view_as(p))
        i += n


def flat_grad(
    y: torch.Tensor,
    params: list[nn.Parameter],
    create_graph: bool = False,
    retain_graph: bool = False,
) -> torch.Tensor:
    """d y / d params as one flat vector (zeros for parameters y does not depend on)."""
    grads = torch.autograd.grad(
        y,
        params,
        create_graph=create_graph,
        retain_graph=retain_graph or create_graph,
        allow_unused=True,
    )
    return torch.cat(
        [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def conjugate_gradient(
    Avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int, tol: float = 1e-10
) -> torch.Tensor:
    """Solve A x = b for symmetric positive-definite A given only x -> A x."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        Ap = Avp(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        if rr_new < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def hessian_vector_product(
    f: Callable[[], torch.Tensor], params: list[nn.Parameter], damping: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> (grad^2 f) v + damping * v, by double backpropagation (Pearlmutter's trick).

    The graph of grad f is built once and kept for all conjugate-gradient iterations.
    """
    grad_f = flat_grad(f(), params, create_graph=True)

    def Hvp(v: torch.Tensor) -> torch.Tensor:
        return flat_grad(grad_f @ v, params, retain_graph=True) + damping * v

    return Hvp


def trpo_policy_step(policy: ActorCritic, batch: Batch, cfg: TRPOConfig) -> dict[str, float]:
    """One natural-gradient step on the policy parameters with a KL-enforcing line search."""
    params = policy.policy_parameters()
    A_hat = (batch.A_hat - batch.A_hat.mean()) / (batch.A_hat.std() + 1e-8)
    with torch.no_grad():
        dist_old = policy.distribution(batch.obs).detach()

    def surrogate() -> torch.Tensor:
        # L(theta) = E[ratio A_hat] + c_ent H[pi_theta] (Christiano et al. A.1: an entropy
        # bonus "to incentivize the increased exploration needed to deal with a changing
        # reward function")
        dist = policy.distribution(batch.obs)
        ratio = torch.exp(dist.log_prob(batch.actions) - batch.logp_old)
        L = (ratio * A_hat).mean()
        return L + cfg.ent_coef * dist.entropy().mean() if cfg.ent_coef else L

    def mean_kl() -> torch.Tensor:
        return dist_old.kl(policy.distribution(batch.obs)).mean()

    L_old = surrogate()
    g = flat_grad(L_old, params)
    L_old = L_old.detach()
    Fvp = hessian_vector_product(mean_kl, params, cfg.cg_damping)
    s = conjugate_gradient(Fvp, g, cfg.cg_iters)
    sFs = s @ Fvp(s)
    beta = torch.sqrt(2.0 * cfg.max_kl / (sFs + 1e-12))  # step to the trust-region boundary
    full_step = beta * s
    expected = g @ full_step

    theta_old = flat_params(params)
    accepted, kl, improvement, frac = False, torch.zeros(()), torch.zeros(()), 1.0
    with torch.no_grad():
        for _ in range(cfg.backtrack_iters):
            set_flat_params(params, theta_old + frac * full_step)
            kl = mean_kl()
            improvement = surrogate() - L_old
            if (
                torch.isfinite(kl)
                and kl <= cfg.max_kl
                and improvement > 0
                and improvement / (frac * expected) >= cfg.accept_ratio
            ):
                accepted = True
                break
            frac *= cfg.backtrack_coef
        if not accepted:
            set_flat_params(params, theta_old)
            kl, improvement = torch.zeros(()), torch.zeros(())
        entropy = policy.distribution(batch.obs).entropy().mean()
    return {
        "policy_improvement": float(improvement),
        "expected_improvement": float(expected),
        "kl": float(kl),
        "step_fraction": frac if accepted else 0.0,
        "line_search_accepted": float(accepted),
        "entropy": float(entropy),
    }


def trpo_value_step_trust_region(
    policy: ActorCritic, batch: Batch, cfg: TRPOConfig
) -> dict[str, float]:
    """GAE paper, section 5: minimize sum_n ||V_phi(s_n) - V_hat_n||^2 subject to
    1/N sum_n ||V_phi(s_n) - V_phi_old(s_n)||^2 / (2 sigma^2) <= epsilon,
    with sigma^2 = 1/N sum_n ||V_phi_old(s_n) - V_hat_n||^2. The constraint's Hessian at
    phi_old is the Gauss-Newton matrix (1/(N sigma^2)) J^T J; the step is its CG solution
    against the objective's gradient, scaled to the boundary. Repeated ``value_steps`` times,
    each step recentred; a step that does not lower the loss is halved until it does.
    """
    params = policy.value_parameters()
    V_hat = batch.returns
    loss_before = None
    for _ in range(cfg.value_steps):
        with torch.no_grad():
            V_old = policy.value(batch.obs)
            sigma2 = ((V_old - V_hat) ** 2).mean().clamp_min(1e-8)
        loss = ((policy.value(batch.obs) - V_hat) ** 2).mean()
        if loss_before is None:
            loss_before = float(loss.detach())
        g = flat_grad(loss, params)

        def constraint() -> torch.Tensor:
            return ((policy.value(batch.obs) - V_old) ** 2).mean() / (2.0 * sigma2)  # noqa: B023

        Hvp = hessian_vector_product(constraint, params, damping=1e-3)
        s = conjugate_gradient(Hvp, g, cfg.cg_iters)
        step = torch.sqrt(2.0 * cfg.value_max_kl / (s @ Hvp(s) + 1e-12)) * s
        phi_old = flat_params(params)
        with torch.no_grad():
            frac = 1.0
            for _ in range(cfg.backtrack_iters):
                set_flat_params(params, phi_old - frac * step)
                if ((policy.value(batch.obs) - V_hat) ** 2).mean() < loss:
                    break
                frac *= 0.5
            else:
                set_flat_params(params, phi_old)
    with torch.no_grad():
        loss_after = float(((policy.value(batch.obs) - V_hat) ** 2).mean())
    return {"value_loss_before": float(loss_before or 0.0), "value_loss": loss_after}


def trpo_value_step_adam(
    policy: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    cfg: TRPOConfig,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Regression epochs with Adam on (V - V_hat)^2, as OpenAI Baselines' TRPO does."""
    B = len(batch)
    losses = []
    for _ in range(cfg.value_steps):
        perm = torch.randperm(B, generator=generator).to(batch.obs.device)
        for start in range(0, B, cfg.value_minibatch):
            idx = perm[start : start + cfg.value_minibatch]
            loss = ((policy.value(batch.obs[idx]) - batch.returns[idx]) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
    return {"value_loss": float(torch.stack(losses).mean())}
