"""Running statistics: exact merge of batches, and a save / restore round trip."""

import numpy as np
import torch

from rlhp.algos.normalizers import RewardScaler, RunningMeanStd
from rlhp.nn.normalization import ObservationNormalizer


def test_observation_normalizer_matches_full_data_statistics():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 5))
    norm = ObservationNormalizer((5,), clip=100.0, eps=1e-12)
    for chunk in np.array_split(data, 7):
        norm.update(torch.from_numpy(chunk))
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-6)
    out = norm(torch.from_numpy(data).float()).numpy()
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(out.std(0), 1.0, atol=1e-3)


def test_observation_normalizer_clips():
    norm = ObservationNormalizer((1,), clip=2.0)
    assert norm(torch.tensor([[100.0]])).item() == 2.0


def test_observation_normalizer_state_round_trip():
    a = ObservationNormalizer((3,))
    a.update(torch.randn(50, 3) * 4 + 1)
    b = ObservationNormalizer((3,))
    b.load_state_dict(a.state_dict())
    x = torch.randn(10, 3)
    torch.testing.assert_close(a(x), b(x))


def test_running_mean_std_and_reward_scaler_state():
    rms = RunningMeanStd()
    data = np.random.default_rng(1).normal(size=500)
    for chunk in np.array_split(data, 5):
        rms.update(chunk)
    assert abs(rms.mean - data.mean()) < 1e-3 and abs(rms.var - data.var()) < 1e-2
    scaler = RewardScaler(num_envs=2, gamma=0.99)
    r = np.ones((100, 2), np.float32)
    scaled = scaler(r, np.zeros((100, 2), bool))
    # the discounted return of a constant reward grows; its std is what we divide by
    assert np.allclose(scaled, 1.0 / np.sqrt(scaler.rms.var + 1e-8), rtol=1e-5)
    other = RewardScaler(num_envs=2, gamma=0.99)
    other.load_state_dict(scaler.state_dict())
    end = np.zeros((3, 2), bool)
    np.testing.assert_array_equal(other(r[:3], end), scaler(r[:3], end))
