"""Every file rlhp saves state in, and the only code that reads or writes them.

A run directory holds two checkpoints:

- ``checkpoint.pt``, the run state (``RunCheckpoint``): the learner (policy, initial policy,
  optimizer, normalizers, counters, RNG), the loop's counters and the reward-model version
  the learner last used. Written atomically every ``runtime.checkpoint_every`` iterations
  and when a run stops; ``--resume``, ``rlhp eval`` and the learner's recovery read it.
- ``reward_model.pt``, the reward trainer's state (``RewardModelCheckpoint``): the reward
  model's ``state_dict`` (ensemble or oracle), how many stored labels it has fitted, and the
  newest label's time. Written atomically after every fit; ``RewardEnsemble.save/load`` write
  and read the same layout. With ``reward_model.keep_versions`` every fit's is also kept as
  ``reward_models/v0001.pt``, ... (the version the fit published; ``reward_model_versions``).

Writes go through ``rlhp.data._durable.write_atomic`` (temporary file, file fsync, rename,
directory fsync), so after a crash or a power loss each file is the old one or the new one,
never empty or torn. Reads never unpickle code: ``load_checkpoint`` uses
``torch.load(weights_only=True)`` and allows only the numpy types the learner's normalizers
save; anything else is refused with one line.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlhp.data._durable import write_atomic
from rlhp.errors import ConfigError

RUN_CHECKPOINT = "checkpoint.pt"
REWARD_MODEL = "reward_model.pt"
REWARD_MODEL_VERSIONS = "reward_models"  # reward_model.keep_versions: one file per version

# What numpy arrays and scalars pickle to (found from numpy itself, so numpy 1.x and 2.x both
# work): the array reconstructor, the scalar constructor, ndarray, dtype and its classes.
_NUMPY_TYPES = (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                np.uint64, np.uint32, np.uint16, np.uint8, np.bool_)  # fmt: skip
SAFE_GLOBALS: list[Any] = [
    np.zeros(1).__reduce__()[0],  # numpy.(_)core.multiarray._reconstruct
    np.float64(0).__reduce__()[0],  # numpy.(_)core.multiarray.scalar
    np.ndarray,
    np.dtype,
    *{type(np.dtype(t)) for t in _NUMPY_TYPES},  # numpy.dtypes.Float64DType, ...
]


class UnsafeCheckpointError(ConfigError):
    """A checkpoint that holds more than tensors, numbers and arrays (or is no checkpoint)."""


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> Any:
    """The object saved in ``path`` by ``torch.save``, loaded without unpickling code.

    Raises ``UnsafeCheckpointError`` (a ConfigError: one line, exit status 2 in the CLI) when
    the file names any other Python object, or is not a torch checkpoint at all.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f"it names {found.group(1)}" if found else "it holds unknown Python objects"
        raise UnsafeCheckpointError(
            f"{path}: refused to load: {what}, which an rlhp checkpoint never holds (loading "
            "it could run code); it was not written by rlhp or was altered. Only use "
            "checkpoints from a source you trust"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise UnsafeCheckpointError(
            f"{path}: not a readable torch checkpoint ({str(err).splitlines()[0][:160]}); "
            "check the path, or restore the file from the run's MLflow artifacts"
        ) from None


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` atomically and durably."""
    write_atomic(path, lambda f: torch.save(obj, f))


# --------------------------------------------------------------------------- run state


@dataclass
class RunCheckpoint:
    """The run state in ``checkpoint.pt``."""

    learner: dict[str, Any]  # rlhp.actors.learner.LearnerActor.state_dict()
    iteration: int
    global_step: int
    reward_version: int  # the reward model version the learner last trained with
    run_id: str
    wall_s: float  # training wall time before this checkpoint, over every resume

    @property
    def policy(self) -> dict[str, torch.Tensor]:
        """The policy's weights and observation statistics (what ``rlhp eval`` needs)."""
        return self.learner["learner"]["policy"]

    def save(self, run_dir: Path) -> None:
        save_torch(Path(run_dir) / RUN_CHECKPOINT, asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> RunCheckpoint | None:
        """The run's checkpoint, or None when it has none yet."""
        path = Path(run_dir) / RUN_CHECKPOINT
        if not path.exists():
            return None
        state = load_checkpoint(path)
        try:
            return cls(**{k: state[k] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            raise UnsafeCheckpointError(
                f"{path}: not an rlhp run checkpoint (keys {sorted(state)[:8]}); check the run id"
            ) from None


# --------------------------------------------------------------------------- reward model


@dataclass
class RewardModelCheckpoint:
    """The reward trainer's state in ``reward_model.pt``."""

    model: dict[str, Any]  # RewardEnsemble / OracleRewardModel .state_dict()
    labels_fitted: int = 0  # stored labels (all, including "can't tell") fitted so far
    newest_label_time: float = 0.0  # created_at of the newest fitted label (s since epoch)

    def save(self, path: Path) -> None:
        save_torch(Path(path), asdict(self))

    @classmethod
    def load(cls, path: Path) -> RewardModelCheckpoint | None:
        """The saved state, or None when ``path`` does not exist."""
        path = Path(path)
        if not path.exists():
            return None
        state = load_checkpoint(path)
        if "ensemble" in state and "model" not in state:  # written before this layout's name
            state = {**state, "model": state.pop("ensemble")}
        try:
            return cls(**{k: state[k] for k in cls.__dataclass_fields__ if k in state})
        except TypeError:
            raise UnsafeCheckpointError(
                f"{path}: not an rlhp reward-model checkpoint (keys {sorted(state)[:8]})"
            ) from None


def reward_model_version_path(run_dir: Path, version: int) -> Path:
    """Where ``reward_model.keep_versions`` keeps version ``version`` of a run's r_hat."""
    return Path(run_dir) / REWARD_MODEL_VERSIONS / f"v{version:04d}.pt"


def reward_model_versions(run_dir: Path) -> dict[int, Path]:
    """The kept reward model versions of a run (``reward_model.keep_versions``), by version."""
    found = (Path(run_dir) / REWARD_MODEL_VERSIONS).glob("v*.pt")
    return dict(sorted((int(p.stem[1:]), p) for p in found if p.stem[1:].isdigit()))
