"""The hand-written distributions agree with torch.distributions."""

import torch
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Normal, kl_divergence

from rlhp.nn.distributions import Categorical, DiagGaussian


def test_diag_gaussian_matches_torch():
    g = torch.Generator().manual_seed(0)
    mean, log_std = torch.randn(5, 3, generator=g), torch.randn(3, generator=g) * 0.3
    mean2, log_std2 = torch.randn(5, 3, generator=g), torch.randn(3, generator=g) * 0.3
    a = torch.randn(5, 3, generator=g)
    ours, ref = DiagGaussian(mean, log_std), Normal(mean, log_std.exp())
    ref2 = Normal(mean2, log_std2.exp())
    torch.testing.assert_close(ours.log_prob(a), ref.log_prob(a).sum(-1))
    torch.testing.assert_close(ours.entropy(), ref.entropy().sum(-1))
    torch.testing.assert_close(
        ours.kl(DiagGaussian(mean2, log_std2)), kl_divergence(ref, ref2).sum(-1)
    )


def test_categorical_matches_torch():
    g = torch.Generator().manual_seed(1)
    logits, logits2 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    a = torch.randint(0, 4, (6,), generator=g)
    ours, ref = Categorical(logits), TorchCategorical(logits=logits)
    torch.testing.assert_close(ours.log_prob(a), ref.log_prob(a))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    torch.testing.assert_close(
        ours.kl(Categorical(logits2)), kl_divergence(ref, TorchCategorical(logits=logits2))
    )


def test_categorical_sampling_frequencies():
    torch.manual_seed(0)
    probs = torch.tensor([0.1, 0.2, 0.7])
    samples = Categorical(probs.log().expand(20000, 3)).sample()
    freq = torch.bincount(samples, minlength=3).float() / 20000
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)
