"""The score mask hides the score: two scores on one emulator state look the same masked."""

from __future__ import annotations

import numpy as np
import pytest
from ale_py import ALEInterface, roms
from PIL import Image

from rlhp.envs import EnvConfig, make_vector_env
from rlhp.envs.score_masks import SCORE_MASKS, apply_mask, scaled_regions
from rlhp.errors import ConfigError

GAME_IDS = {
    "beam_rider": "BeamRider",
    "breakout": "Breakout",
    "enduro": "Enduro",
    "pong": "Pong",
    "qbert": "Qbert",
    "seaquest": "Seaquest",
    "space_invaders": "SpaceInvaders",
}


def _screens_with_scores(game: str, scores: tuple[int, int]) -> list[tuple[np.ndarray, ...]]:
    """RGB and grayscale screens of one emulator state, with the score RAM set to each value.

    The state comes from 300 seeded random frames; after writing the score bytes (values
    below 10 read the same in BCD and binary, and stay below Pong's 21) the
    emulator runs two NOOP frames so the game redraws its counters.
    """
    ale = ALEInterface()
    ale.setInt("random_seed", 0)
    ale.loadROM(roms.get_rom_path(game))
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(0)
    for _ in range(300):
        ale.act(actions[rng.integers(len(actions))])
    state = ale.cloneState()
    out = []
    for score in scores:
        ale.restoreState(state)
        for byte in SCORE_MASKS[game].score_ram:
            ale.setRAM(byte, score)
        for _ in range(2):
            ale.act(actions[0])
        out.append((ale.getScreenRGB().copy(), ale.getScreenGrayscale().copy()))
    return out


@pytest.mark.parametrize("game", sorted(SCORE_MASKS))
def test_mask_hides_score_native_and_84x84(game: str) -> None:
    (rgb_a, gray_a), (rgb_b, gray_b) = _screens_with_scores(game, (3, 7))
    # the two scores are visible without the mask: the test can fail
    assert np.any(rgb_a != rgb_b)
    mask = SCORE_MASKS[game]
    native = scaled_regions(mask, 210, 160)
    apply_mask(rgb_a, native, rgb=True)
    apply_mask(rgb_b, native, rgb=True)
    np.testing.assert_array_equal(rgb_a, rgb_b)  # whole masked frames identical
    # 84x84 agent frames: resized with area averaging and with (antialiased) bilinear
    small = scaled_regions(mask, 84, 84)
    for resample in (Image.BOX, Image.BILINEAR):
        frames = [
            np.asarray(Image.fromarray(g).resize((84, 84), resample)).copy()
            for g in (gray_a, gray_b)
        ]
        assert np.any(frames[0] != frames[1])
        for f in frames:
            apply_mask(f, small)
        np.testing.assert_array_equal(frames[0], frames[1])


@pytest.mark.parametrize("game", sorted(SCORE_MASKS))
def test_mask_leaves_most_of_the_screen(game: str) -> None:
    frame = np.ones((84, 84), np.uint8)
    apply_mask(frame, scaled_regions(SCORE_MASKS[game], 84, 84))
    assert 0.5 < frame.mean() < 1.0  # something is hidden, the playfield is not


def test_vector_env_masks_exactly_the_regions() -> None:
    """Masked and unmasked envs with one seed differ only inside the mask regions."""
    base = EnvConfig(id="ALE/Pong-v5", num_envs=2, atari_num_threads=1)
    plain = make_vector_env(base, seed=5)
    masked = make_vector_env(base.model_copy(update={"mask_score": True}), seed=5)
    regions = scaled_regions(SCORE_MASKS["pong"], 84, 84)
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.integers(0, 6, size=2)
        obs, *_ = plain.step(a)
        m_obs, *_ = masked.step(a)
        apply_mask(obs, regions)
        np.testing.assert_array_equal(obs, m_obs)
    plain.close()
    masked.close()


def test_unknown_game_for_masking_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"env\.mask_score.*ms_pacman.*pong"):
        make_vector_env(EnvConfig(id="ALE/MsPacman-v5", mask_score=True), seed=0)


def test_masking_a_non_atari_env_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"env\.mask_score"):
        make_vector_env(EnvConfig(id="Hopper-v5", mask_score=True), seed=0)


def test_paper_games_all_have_masks() -> None:
    assert set(GAME_IDS) == set(SCORE_MASKS)
    for game, name in GAME_IDS.items():
        env = make_vector_env(EnvConfig(id=f"ALE/{name}-v5", mask_score=True), seed=0)
        assert env.game == game  # type: ignore[attr-defined]
        env.close()
