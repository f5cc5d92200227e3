"""Feedback section of the run config: who answers the queries, and how people reach them."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FeedbackConfig(BaseModel):
    """The labelling web app of a run labelled by people (``teacher.kind=human``): the
    queries wait in a queue served by the app; people answer them there.

    Every request to the app's API needs a labeller token. Tokens come from ``tokens_file``
    (lines ``name:token``) or, without one, are generated into the run directory and printed.
    The app binds to loopback unless told otherwise; binding elsewhere needs a tokens file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    serve: Literal["actor", "ray_serve", "none"] = Field(
        "actor",
        description="where the web app runs: inside the run's feedback actor (on the driver's "
        "node), as a Ray Serve application, or nowhere (use `rlhp label RUN_ID`)",
    )
    host: str = Field("127.0.0.1", description="interface the web app binds to")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 = any free port)")
    tokens_file: str | None = Field(
        None, description="labeller tokens, one `name:token` per line; default: generated"
    )
    num_tokens: int = Field(3, ge=1, le=1000, description="labeller tokens generated if no file")
    task: str | None = Field(
        None, description="task description shown to labellers; default: from the env id"
    )
    overlap: int = Field(
        1, ge=1, le=10, description="labellers each pair is shown to (>= 2 measures agreement)"
    )
    lease_s: float = Field(
        120.0, gt=0, description="seconds a pair stays reserved for the labeller it was shown to"
    )
    max_pending: int = Field(
        16, ge=1, description="pairs waiting for people at most (the queue the app serves)"
    )
    clip_format: Literal["webm", "mp4"] = Field(
        "webm", description="video container of the clips (VP9 WebM plays in every browser)"
    )
    # request limits of the web app (rlhp.feedback_app.limits): 413 / 429 answers beyond them
    max_body_bytes: int = Field(
        16_384,
        ge=1024,
        le=16_777_216,
        description="largest request body the app reads (bytes); the API's bodies are a few "
        "hundred bytes, larger ones are answered 413 unread",
    )
    max_concurrent_requests: int = Field(
        64, ge=1, le=10_000, description="requests served at once; more are answered 429"
    )
    rate_limit_per_s: float = Field(
        10.0,
        ge=0.0,
        description="requests per second per labeller token, sustained (0 = no limit); a "
        "person's page sends about four per answer",
    )
    rate_limit_burst: int = Field(
        60, ge=1, le=100_000, description="requests a token may send at once above that rate"
    )
