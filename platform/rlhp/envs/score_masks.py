"""Per-game masks that blank the score and other on-screen reward counters in Atari frames.

Christiano et al. 2017, appendix A.2: "Atari games include a visual display of the score,
which in theory could be used to trivially infer the reward. [...] we replace the score area
with a constant black background on all seven games. On BeamRider we additionally blank out
the enemy ship count, and on Enduro we blank out the speedometer." Here the whole Enduro
dashboard (odometer, day and cars-to-pass counter) is blanked, and on Seaquest the
rescued-divers counter too (six divers give a bonus).

Regions are rows and columns of the native 210x160 ALE screen, half-open
``(row0, row1, col0, col1)``. They were found by rendering real frames from ALE and by
changing one RAM byte at a time from a fixed emulator state to see which screen pixels each
byte draws (ale-py 0.12.1 ROMs). The bytes that draw each counter are listed, so
``tests/envs/test_score_masks.py`` can set two different scores on one emulator state and
check that the masked frames are identical while the unmasked frames differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rlhp.errors import ConfigError

ALE_HEIGHT = 210
ALE_WIDTH = 160


@dataclass(frozen=True)
class ScoreMask:
    """Screen regions to blank for one game and the RAM bytes that draw them."""

    regions: tuple[tuple[int, int, int, int], ...]
    """(row0, row1, col0, col1), half-open, in native 210x160 screen pixels."""
    score_ram: tuple[int, ...]
    """RAM indices (0..127) of the score digits (BCD), used by the tests."""
    note: str


SCORE_MASKS: dict[str, ScoreMask] = {
    "beam_rider": ScoreMask(
        regions=((0, 42, 0, ALE_WIDTH),),
        score_ram=(9, 10, 11),
        note="score rows 10-16, sector rows 21-28, enemies-left and torpedo counters 32-39",
    ),
    "breakout": ScoreMask(
        regions=((0, 16, 0, ALE_WIDTH),),
        score_ram=(76, 77),
        note="score, lives and player number, rows 5-14 (the wall starts at row 16)",
    ),
    "enduro": ScoreMask(
        regions=((157, 192, 0, ALE_WIDTH),),
        score_ram=(43, 44, 45),
        note="dashboard: odometer rows 165-171, day and cars-to-pass counter rows 179-187",
    ),
    "pong": ScoreMask(
        regions=((0, 22, 0, ALE_WIDTH),),
        score_ram=(13, 14),
        note="both scores, rows 1-20 (the top wall starts at row 24)",
    ),
    "qbert": ScoreMask(
        regions=((0, 16, 0, ALE_WIDTH),),
        score_ram=(89, 90, 91),
        note="score rows 6-14 (the pyramid top is at row 34)",
    ),
    "seaquest": ScoreMask(
        regions=((0, 19, 0, ALE_WIDTH), (178, 190, 0, ALE_WIDTH)),
        score_ram=(56, 57, 58),
        note=(
            "score rows 9-16; rescued-divers counter rows 178-186 (bonus on 6 divers); "
            "the oxygen bar (rows 170-174) stays visible"
        ),
    ),
    "space_invaders": ScoreMask(
        regions=((0, 20, 0, ALE_WIDTH),),
        score_ram=(102, 104),
        note="both players' scores, rows 10-17 (invaders start at row 31)",
    ),
}


def score_mask_for(game: str, env_id: str) -> ScoreMask:
    """The mask of ALE ``game`` (snake_case ROM name), or ConfigError naming ``env.mask_score``."""
    try:
        return SCORE_MASKS[game]
    except KeyError:
        known = ", ".join(sorted(SCORE_MASKS))
        raise ConfigError(
            f"env.mask_score: no score mask is defined for game {game!r} (env.id={env_id!r}); "
            f"masks exist for: {known}. Set env.mask_score=false, or add the game's score "
            "regions to rlhp.envs.score_masks.SCORE_MASKS"
        ) from None


def scaled_regions(
    mask: ScoreMask, height: int, width: int, margin: int = 1
) -> list[tuple[slice, slice]]:
    """Regions of ``mask`` scaled to a ``height`` x ``width`` frame, as (rows, cols) slices.

    Scaling rounds outward and widens each inner edge by ``margin`` pixels, since resizing
    210x160 to 84x84 blends neighbouring rows into each output pixel.
    """
    out = []
    for row0, row1, col0, col1 in mask.regions:
        r0 = math.floor(row0 * height / ALE_HEIGHT)
        r1 = math.ceil(row1 * height / ALE_HEIGHT)
        c0 = math.floor(col0 * width / ALE_WIDTH)
        c1 = math.ceil(col1 * width / ALE_WIDTH)
        if margin and height != ALE_HEIGHT:
            r0 = r0 - margin if row0 > 0 else 0
            r1 = r1 + margin if row1 < ALE_HEIGHT else height
        if margin and width != ALE_WIDTH:
            c0 = c0 - margin if col0 > 0 else 0
            c1 = c1 + margin if col1 < ALE_WIDTH else width
        out.append((slice(max(r0, 0), min(r1, height)), slice(max(c0, 0), min(c1, width))))
    return out


def apply_mask(
    frames: np.ndarray, regions: list[tuple[slice, slice]], *, rgb: bool = False, value: int = 0
) -> None:
    """Blank ``regions`` in place in ``frames``: [..., H, W], or [..., H, W, C] if ``rgb``."""
    for rows, cols in regions:
        if rgb:
            frames[..., rows, cols, :] = value
        else:
            frames[..., rows, cols] = value
