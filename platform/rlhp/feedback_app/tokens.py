"""Labeller tokens: ``name:token`` lines in a file, or generated for a run and saved 0600.

A token identifies one labeller (their answers are recorded under ``name``). Tokens are
compared in constant time; names are restricted to what MLflow metric keys accept.
"""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path

from rlhp.data._durable import write_atomic
from rlhp.errors import ConfigError
from rlhp.feedback_app.links import tokens_path

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
MIN_TOKEN_CHARS = 16


def read_tokens(path: str | Path) -> dict[str, str]:
    """``{token: name}`` from a tokens file (blank lines and ``#`` comments are skipped)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"feedback.tokens_file: no file {path}; write one `name:token` line per labeller"
        )
    tokens: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, token = (part.strip() for part in line.partition(":"))
        if not sep or not NAME.match(name) or len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"feedback.tokens_file: line {n} of {path} must be `name:token` with a name of "
                f"letters, digits, '_', '-', '.' and a token of at least {MIN_TOKEN_CHARS} "
                "characters (e.g. from `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        if token in tokens or name in tokens.values():
            raise ConfigError(f"feedback.tokens_file: line {n} of {path} repeats a name or token")
        tokens[token] = name
    if not tokens:
        raise ConfigError(f"feedback.tokens_file: {path} has no `name:token` lines")
    return tokens


def generate_tokens(path: str | Path, count: int) -> dict[str, str]:
    """Write ``count`` fresh tokens (labeller-1 ...) to ``path`` (mode 0600) and return them."""
    tokens = {secrets.token_urlsafe(18): f"labeller-{i + 1}" for i in range(count)}
    lines = ["# rlhp labeller tokens: name:token\n"]
    lines += [f"{name}:{token}\n" for token, name in tokens.items()]
    write_atomic(Path(path), "".join(lines).encode(), mode=0o600)  # whole after a power loss
    return tokens


def load_or_generate(tokens_file: str | None, run_dir: Path, count: int) -> dict[str, str]:
    """The configured tokens file; else the run's own (generated on first use, kept on resume)."""
    if tokens_file is not None:
        return read_tokens(tokens_file)
    own = tokens_path(None, run_dir)
    return read_tokens(own) if own.exists() else generate_tokens(own, count)


def labeller_for(tokens: dict[str, str], token: str | None) -> str | None:
    """The labeller a token belongs to (constant-time comparison), or None."""
    if not token:
        return None
    found = None
    for known, name in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = name
    return found
