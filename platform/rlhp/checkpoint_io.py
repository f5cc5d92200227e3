"""Loading rlhp checkpoints without running code from them.

``torch.load(weights_only=False)`` unpickles whatever a file holds, so a crafted
``checkpoint.pt`` or ``reward_model.pt`` (handed to ``rlhp eval``, ``--resume`` or a reward
trainer) would run its author's code. Every rlhp checkpoint is loaded here instead, with
``weights_only=True``: tensors, containers, numbers and strings, plus the few numpy types the
learner's normalizers save (arrays, dtypes, scalars). Anything else is refused with one line.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlhp.errors import ConfigError

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
