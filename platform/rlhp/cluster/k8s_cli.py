"""``rlhp k8s submit|status|logs`` (being written)."""

from __future__ import annotations

import argparse


def add_k8s_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``rlhp k8s`` on the ``rlhp`` parser."""
