"""``--set KEY=VALUE``: how every command and job takes config overrides. Kept apart from
``rlhp.config`` so that building the command line imports nothing heavy."""

from __future__ import annotations

import argparse


def add_overrides_argument(
    p: argparse.ArgumentParser,
    help: str = "override a config field, e.g. --set learner.algo=trpo (repeatable)",
) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: every command and job that
    takes config overrides spells them the same way."""
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )
