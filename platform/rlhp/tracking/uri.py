"""Tracking URIs: which store a run uses, how it is shown, and how to open its UI.

- MLflow's own convention: ``MLFLOW_TRACKING_URI`` picks the store when ``tracking.uri`` is
  not set; without either, a SQLite file in the working directory.
- A URI may carry credentials (``postgresql://user:password@db/mlflow``,
  ``https://user:token@mlflow.example``, ``?password=…``); everything rlhp prints or records
  (MLflow params, the logged config, job logs) shows it with them masked.
- The UI command printed at the end matches the store: ``mlflow ui --backend-store-uri …``
  for a database or file store, the server's address for an MLflow server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_URI = "sqlite:///mlflow.db"
MASK = "***"
# query parameters whose values are secrets (libpq's password, tokens of cloud stores, ...)
_SECRET_KEYS = re.compile(r"pass|secret|token|key|credential|signature|sig$", re.IGNORECASE)
_URI = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"]+")


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set (MLflow's convention), else ``sqlite:///mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI", "").strip() or DEFAULT_URI


def redact_uri(uri: str) -> str:
    """``uri`` with a password in its user part and secret query values masked."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if sep else f"{MASK}@{host}" if user else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_KEYS.search(k) for k, _ in pairs):
            query = urlencode(
                [(k, MASK if _SECRET_KEYS.search(k) else v) for k, v in pairs], safe="*"
            )
    if (netloc, query) == (parts.netloc, parts.query):
        return uri
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URI inside ``text`` (a YAML dump, a log line) redacted."""
    return _URI.sub(lambda m: redact_uri(m.group(0)), text)


def redact_tree(tree: Any) -> Any:
    """A copy of nested dicts / lists with every string URI in it redacted."""
    if isinstance(tree, Mapping):
        return {k: redact_tree(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(redact_tree(v) for v in tree)
    return redact_text(tree) if isinstance(tree, str) else tree


def ui_hint(uri: str) -> str:
    """How to look at runs recorded in ``uri`` (credentials masked)."""
    shown = redact_uri(uri)
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        parts = urlsplit(uri)
        address = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
        return f"open {address} in a browser (the MLflow server's UI)"
    if scheme.startswith("databricks"):
        return "open the experiment in your Databricks workspace"
    return f"mlflow ui --backend-store-uri {shown}   (then open http://127.0.0.1:5000)"
