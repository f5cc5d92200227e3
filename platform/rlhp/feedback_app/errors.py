"""Errors the labelling app answers with a 4xx status and a message a person can act on."""

from __future__ import annotations


class FeedbackError(Exception):
    """Base: ``status`` is the HTTP status the web app answers with."""

    status = 400


class UnauthorizedError(FeedbackError):
    status = 401


class NotYoursError(FeedbackError):
    """A submission for a pair that was not handed to this labeller (forged or stale)."""

    status = 403


class UnknownItemError(FeedbackError):
    """An unknown pair or clip id."""

    status = 404


class AlreadyAnsweredError(FeedbackError):
    """A replayed submission, or a pair that already has all its answers."""

    status = 409


class StorageError(FeedbackError):
    """The label store could not write an answer (ENOSPC, EIO): nothing was stored, the
    labeller can send it again."""

    status = 503
