"""The rllib backend shapes rewards as rlhp's learner does: the same running return-std
scaling, computed on episode chunks instead of a [T, N] rollout."""

import numpy as np

from rlhp.algos.normalizers import RewardScaler
from rlhp.rllib_backend.connectors import ReturnScaler, stream_id


def test_chunked_scaling_matches_the_learners_on_one_stream():
    """One env's stream cut into chunks (an episode continued across chunks, then a new
    one) scales exactly as rlhp's RewardScaler scales the [T, 1] rollout it came from."""
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=60)
    ends = np.zeros(60, dtype=bool)
    ends[[24, 59]] = True  # episode a: steps 0-24, episode b: 25-59
    ours = ReturnScaler(gamma=0.99, clip=10.0)
    theirs = RewardScaler(num_envs=1, gamma=0.99, clip=10.0)
    cuts = [(0, 10, "a"), (10, 25, "a"), (25, 40, "b"), (40, 60, "b")]  # two samples' chunks
    for first, second in (cuts[:2], cuts[2:]):
        chunks = [(key, rewards[s:e], bool(ends[e - 1])) for s, e, key in (first, second)]
        scaled = np.concatenate(ours(chunks))
        lo, hi = first[0], second[1]
        ref = theirs(rewards[lo:hi, None], ends[lo:hi, None])[:, 0]
        # RewardScaler folds the whole block into its statistics before scaling; so does ours
        np.testing.assert_allclose(scaled, ref, rtol=1e-5, atol=1e-6)
    assert ours.returns == {}  # both episodes ended: nothing carried over


def test_stream_id_undoes_the_bootstrap_connectors_suffix():
    assert stream_id("9f3c_0") == "9f3c"
    assert stream_id("9f3c_12") == "9f3c"
