"""``rlhp submit`` and ``rlhp sweep`` (being written)."""

from __future__ import annotations

import argparse


def add_job_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``rlhp submit`` and ``rlhp sweep`` on the ``rlhp`` parser."""
