"""GAE (Schulman et al. 2016, eq. 16) against a brute-force sum of discounted TD residuals."""

import numpy as np
import pytest

from rlhp.algos.gae import compute_gae


def brute_force_gae(r, v, v_next, term, end, gamma, lam):
    """A_hat_t = sum_l (gamma lambda)^l delta_{t+l}, stopping after the step that ends the episode."""
    T, N = r.shape
    delta = r + gamma * (1.0 - term) * v_next - v
    A = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            total, coef = 0.0, 1.0
            for k in range(t, T):
                total += coef * delta[k, i]
                if end[k, i]:
                    break
                coef *= gamma * lam
            A[t, i] = total
    return A


def random_rollout(seed, T=37, N=4):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(T, N)).astype(np.float32)
    v = rng.normal(size=(T, N)).astype(np.float32)
    v_next = np.concatenate([v[1:], rng.normal(size=(1, N)).astype(np.float32)])
    term = rng.random((T, N)) < 0.05
    trunc = (rng.random((T, N)) < 0.05) & ~term
    # at an episode end the next state is the final observation, with its own value
    ends = term | trunc
    v_next = np.where(ends, rng.normal(size=(T, N)).astype(np.float32), v_next)
    return r, v, v_next, term, ends


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_brute_force(lam, seed):
    r, v, v_next, term, ends = random_rollout(seed)
    A, ret = compute_gae(r, v, v_next, term, ends, gamma=0.99, lam=lam)
    expected = brute_force_gae(r, v, v_next, term.astype(float), ends, 0.99, lam)
    np.testing.assert_allclose(A, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ret, A + v, rtol=1e-6)


def test_lambda_zero_is_one_step_td_residual():
    r, v, v_next, term, ends = random_rollout(3)
    A, _ = compute_gae(r, v, v_next, term, ends, gamma=0.9, lam=0.0)
    np.testing.assert_allclose(A, r + 0.9 * (1 - term) * v_next - v, rtol=1e-5, atol=1e-6)


def test_lambda_one_is_discounted_return_minus_value():
    """With lambda = 1 and no episode end, A_hat_t = sum_l gamma^l r_{t+l} + gamma^(T-t) V(s_T) - V(s_t)."""
    rng = np.random.default_rng(4)
    T, gamma = 20, 0.97
    r = rng.normal(size=(T, 1)).astype(np.float32)
    v = rng.normal(size=(T, 1)).astype(np.float32)
    v_T = np.float32(rng.normal())
    v_next = np.concatenate([v[1:], [[v_T]]])
    none = np.zeros((T, 1), bool)
    A, _ = compute_gae(r, v, v_next, none, none, gamma, 1.0)
    for t in range(T):
        mc = sum(gamma**k * r[t + k, 0] for k in range(T - t)) + gamma ** (T - t) * v_T
        assert A[t, 0] == pytest.approx(mc - v[t, 0], rel=1e-4, abs=1e-4)


def test_truncation_bootstraps_termination_does_not():
    """Same transition, once truncated (bootstrap from V(final obs)) and once terminated (V = 0)."""
    r = np.array([[1.0]], np.float32)
    v = np.array([[0.5]], np.float32)
    v_final = np.array([[2.0]], np.float32)
    ended = np.array([[True]])
    A_trunc, _ = compute_gae(r, v, v_final, np.array([[False]]), ended, 0.9, 0.95)
    A_term, _ = compute_gae(r, v, v_final, np.array([[True]]), ended, 0.9, 0.95)
    assert A_trunc[0, 0] == pytest.approx(1.0 + 0.9 * 2.0 - 0.5)
    assert A_term[0, 0] == pytest.approx(1.0 - 0.5)


def test_episode_end_stops_the_advantage_sum():
    """The advantage before an episode end must not see rewards of the next episode."""
    T = 4
    r = np.array([[0.0], [0.0], [0.0], [100.0]], np.float32)
    v = np.zeros((T, 1), np.float32)
    ends = np.array([[False], [True], [False], [False]])
    A, _ = compute_gae(r, v, np.zeros((T, 1), np.float32), ends, ends, 0.99, 1.0)
    assert A[0, 0] == 0.0 and A[1, 0] == 0.0
    assert A[2, 0] == pytest.approx(99.0)
