"""How a run tells people where to label without leaking their tokens into logs.

A labeller's link (``http://HOST:8000/#token=…``) is their password. A run's output ends up
in job logs (``rlhp submit``, the Ray dashboard, ``kubectl logs``) that others can read, so
the run announces only the app's address, the labellers' names and the file that holds their
tokens; the full links are shown only on an interactive terminal (``show_links``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

OWN_TOKENS_FILE = "feedback_tokens.txt"  # generated into the run directory (mode 0600)


def tokens_path(tokens_file: str | None, run_dir: Path) -> Path:
    """Where the run's labeller tokens are: ``feedback.tokens_file``, else the run's own."""
    return Path(tokens_file) if tokens_file is not None else Path(run_dir) / OWN_TOKENS_FILE


def base_url(links: dict[str, str]) -> str:
    """The app's address (a link without its ``#token=…``)."""
    return next(iter(links.values()), "").split("#", 1)[0]


def announcement(links: dict[str, str], tokens_file: Path) -> dict[str, Any]:
    """The progress event a run sends about its labelling app: a ``message`` safe for any
    log (address, names, tokens file) and the ``labeller_links`` for a terminal to show."""
    base = base_url(links)
    names = ", ".join(links)
    return {
        "message": f"labelling app at {base} for {names}; their tokens are in {tokens_file} "
        f"(each person opens {base}#token=<their token>)",
        "labeller_links": dict(links),
    }


def link_lines(links: dict[str, str]) -> list[str]:
    """One line per labeller with the full link (for an interactive terminal only)."""
    return [f"labelling app for {name}: {link}" for name, link in links.items()]


def show_links(stream: TextIO) -> bool:
    """Full links go to ``stream`` only when it is an interactive terminal."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False
