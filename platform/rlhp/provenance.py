"""Which code produced a result: the git commit of the checkout, and whether it was dirty.

Long experiments are filled in over days; a table stitched from runs of different code must
say so. Every run records ``code_version()`` (MLflow tag ``rlhp.code_version``) and every
sweep trial keeps it in its result file, so a summary can tell when its rows disagree.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

import rlhp


@functools.cache
def code_version() -> str:
    """``<commit>`` or ``<commit>+dirty.<hash of the diff>`` of the git checkout holding the
    package; ``rlhp-<version>`` when it is not in one (an installed wheel, a Ray job's copy)."""
    root = Path(rlhp.__file__).resolve().parents[2]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        ).stdout

    try:
        commit = git("rev-parse", "--short=12", "HEAD").strip()
        if not commit:
            raise OSError("not a git checkout")
        digest = hashlib.blake2b(git("diff", "HEAD", "--", "platform").encode(), digest_size=4)
        untracked = git("ls-files", "--others", "--exclude-standard", "--", "platform").split()
    except (OSError, subprocess.SubprocessError):
        return f"rlhp-{getattr(rlhp, '__version__', 'unknown')}"
    for name in sorted(untracked):  # new modules count as much as edited ones
        digest.update(name.encode() + (root / name).read_bytes())
    if digest.hexdigest() == hashlib.blake2b(b"", digest_size=4).hexdigest():
        return commit
    return f"{commit}+dirty.{digest.hexdigest()}"
