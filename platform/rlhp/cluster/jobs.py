"""Ray job submission: ``rlhp submit`` sends an entrypoint (``python jobs/<name>.py ...``)
to a Ray cluster's job server and follows it to the end.

A thin layer over Ray's ``JobSubmissionClient`` that adds what the plain client leaves to
the user: the address from ``RAY_ADDRESS`` with a quick reachability probe (an unreachable
host fails in seconds with one line, not after a TCP time-out), the cluster's token
(``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, the places Ray itself
reads) sent as a bearer header whatever ``RAY_AUTH_MODE`` says here, but only over https or
to this machine unless the user allows plain http elsewhere (``--allow-insecure-token``,
with a warning), one-line errors for a missing or rejected token, and Ctrl-C that asks before
stopping the job.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rlhp.errors import ConfigError

# What a working dir upload leaves out by default: run state and local MLflow stores are
# results, not code, and can be large (Ray also honours the working dir's .gitignore).
DEFAULT_EXCLUDES = ["rlhp_runs/", "mlartifacts/", "mlruns/", "*.db", ".git/", "**/__pycache__/"]

# ``rlhp submit`` exit codes by final job status (a job that is left running: 130).
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 3}


@dataclass(frozen=True)
class Token:
    """A Ray auth token and where it came from (for error messages)."""

    value: str
    source: str


def find_token(env: dict[str, str] | None = None) -> Token | None:
    """The token Ray's own clients would use: ``RAY_AUTH_TOKEN``, else the file named by
    ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``; None when there is none."""
    env = dict(os.environ) if env is None else env
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return Token(env["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN")
    if env.get("RAY_AUTH_TOKEN_PATH"):
        path = Path(env["RAY_AUTH_TOKEN_PATH"]).expanduser()
        if not path.is_file() or not path.read_text().strip():
            raise ConfigError(
                f"RAY_AUTH_TOKEN_PATH: {path} is missing or empty; point it at the cluster's "
                "token file, or unset it"
            )
        return Token(path.read_text().strip(), f"RAY_AUTH_TOKEN_PATH={path}")
    default = Path(env.get("HOME", str(Path.home()))) / ".ray" / "auth_token"
    if default.is_file() and default.read_text().strip():
        return Token(default.read_text().strip(), str(default))
    return None


def resolve_address(address: str | None) -> str:
    """The job server's URL: ``address``, else ``RAY_ADDRESS``; ``HOST:PORT`` gets http://."""
    address = (address or os.environ.get("RAY_ADDRESS") or "").strip()
    if not address:
        raise ConfigError(
            "RAY_ADDRESS: no Ray cluster given; set RAY_ADDRESS=http://HEAD:8265 (the head's "
            "dashboard) or pass --address"
        )
    if "://" not in address:
        address = f"http://{address}"
    if urlparse(address).scheme not in ("http", "https"):
        raise ConfigError(
            f"RAY_ADDRESS: {address!r} is not a job server URL; use the head's dashboard "
            "address, e.g. http://HEAD:8265 (not ray:// or the GCS port)"
        )
    return address.rstrip("/")


def probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, with one line, when nothing listens at ``address``."""
    url = urlparse(address)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
            pass
    except OSError as err:
        raise ConfigError(
            f"RAY_ADDRESS: cannot reach a Ray job server at {address} ({err.strerror or err}); "
            "start a cluster with `ray start --head` or set RAY_ADDRESS / --address to the "
            "head's http://HOST:8265"
        ) from None


def is_loopback_host(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address (this machine)."""
    import ipaddress

    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addresses = {info[4][0].split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_token_transport(address: str, token: Token | None, allow_insecure: bool) -> str | None:
    """Refuse (ConfigError) to send ``token`` over plain http to another machine unless
    ``allow_insecure``; return the warning to print when it is allowed, else None."""
    url = urlparse(address)
    if token is None or url.scheme == "https" or is_loopback_host(url.hostname or ""):
        return None
    if not allow_insecure:
        raise ConfigError(
            f"RAY_ADDRESS: {address} is plain http to another machine: the Ray token (from "
            f"{token.source}) would cross the network unencrypted. Use an https:// address, "
            "or a tunnel to 127.0.0.1 (`ssh -L 8265:localhost:8265 HEAD`, `kubectl "
            "port-forward`), or pass --allow-insecure-token to send it anyway"
        )
    return (
        f"rlhp: warning: sending the Ray token over plain http to {url.hostname} "
        "(--allow-insecure-token): anyone on the network path can read it and control the "
        "cluster"
    )


def _auth_error(err: Exception, address: str, token: Token | None) -> ConfigError:
    text = str(err)
    if token is None or "Authentication required" in text:
        return ConfigError(
            f"RAY_AUTH_TOKEN: the cluster at {address} requires a token and none was found; "
            "set RAY_AUTH_TOKEN (print it on the head with `ray get-auth-token`), point "
            "RAY_AUTH_TOKEN_PATH at a file holding it, or write it to ~/.ray/auth_token"
        )
    return ConfigError(
        f"RAY_AUTH_TOKEN: the cluster at {address} rejected the token from {token.source}; "
        "use the head's token (`ray get-auth-token` on the head node)"
    )


def connect_client(
    address: str | None = None,
    allow_insecure_token: bool = False,
    warn: Callable[[str], Any] = lambda line: print(line, file=sys.stderr, flush=True),
) -> tuple[Any, str]:
    """A ``JobSubmissionClient`` for ``address`` (or RAY_ADDRESS) with the token attached,
    and the resolved address. Bad address or token, or a token that would go over plain
    http to another machine without ``allow_insecure_token``: ConfigError."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    token = find_token()
    warning = check_token_transport(url, token, allow_insecure_token)
    probe(url)
    if warning:
        warn(warning)
    headers = {"Authorization": f"Bearer {token.value}"} if token else None
    try:
        return JobSubmissionClient(url, headers=headers), url
    except AuthenticationError as err:
        raise _auth_error(err, url, token) from None
    except (ConnectionError, RuntimeError) as err:  # RuntimeError: "version check returned 404"
        raise ConfigError(
            f"RAY_ADDRESS: {url} answered but is not a Ray job server ({err}); use the head's "
            "dashboard address, e.g. http://HEAD:8265"
        ) from None


def build_runtime_env(
    working_dir: str | None, runtime_env_file: str | None, env_vars: list[str]
) -> dict[str, Any]:
    """The job's runtime_env: a YAML file's (if given), the working dir (with the default
    excludes added) and ``KEY=VALUE`` environment variables on top."""
    import yaml

    runtime_env: dict[str, Any] = {}
    if runtime_env_file:
        path = Path(runtime_env_file)
        if not path.is_file():
            raise ConfigError(f"--runtime-env: no file {path}; give a YAML runtime_env file")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"--runtime-env: {path} must hold a YAML mapping (a runtime_env)")
        runtime_env = loaded
    if working_dir is not None:
        if not Path(working_dir).is_dir():
            raise ConfigError(f"--working-dir: {working_dir} is not a directory")
        runtime_env["working_dir"] = working_dir
    if "working_dir" in runtime_env:
        runtime_env["excludes"] = [*runtime_env.get("excludes", []), *DEFAULT_EXCLUDES]
    variables = dict(runtime_env.get("env_vars", {}))
    for item in env_vars:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env {item!r}: expected KEY=VALUE, e.g. --env MUJOCO_GL=egl")
        variables[key] = value
    if variables:
        runtime_env["env_vars"] = variables
    return runtime_env


def entrypoint_command(args: list[str]) -> str:
    """The shell command the job runs; a bare ``jobs/x.py ...`` gets ``python`` in front."""
    import shlex

    if not args:
        raise ConfigError(
            "ENTRYPOINT: nothing to run; e.g. rlhp submit -- python jobs/mujoco_synthetic.py"
        )
    if args[0].endswith(".py"):
        args = ["python", *args]
    return shlex.join(args)


def submit(
    client: Any, entrypoint: str, runtime_env: dict[str, Any], submission_id: str | None = None
) -> str:
    """Submit and return the job id (upload errors for the working dir become ConfigError)."""
    try:
        return client.submit_job(
            entrypoint=entrypoint, runtime_env=runtime_env or None, submission_id=submission_id
        )
    except ValueError as err:  # bad working_dir / runtime_env, duplicate submission id
        raise ConfigError(f"runtime_env: {err}") from None


async def _tail(client: Any, job_id: str, write: Callable[[str], Any]) -> None:
    async for lines in client.tail_job_logs(job_id):
        write(lines)


def wait_for_end(client: Any, job_id: str, poll_s: float = 1.0) -> str:
    """Poll until the job is SUCCEEDED, FAILED or STOPPED; return that status."""
    while True:
        status = str(client.get_job_status(job_id).value)
        if status in EXIT_CODES:
            return status
        time.sleep(poll_s)


def follow(
    client: Any,
    job_id: str,
    write: Callable[[str], Any] = sys.stdout.write,
    ask: Callable[[str], str] = input,
) -> int:
    """Stream the job's logs until it ends and return its exit code (EXIT_CODES). Ctrl-C
    asks whether to stop the job; on "y" it is stopped, otherwise it keeps running."""
    try:
        asyncio.run(_tail(client, job_id, write))
        status = wait_for_end(client, job_id)
    except KeyboardInterrupt:
        sys.stdout.flush()
        try:
            answer = ask(f"\nstop job {job_id}? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print(f"rlhp: job {job_id} keeps running; follow it with `ray job logs -f {job_id}`")
            return 130
        client.stop_job(job_id)
        status = wait_for_end(client, job_id)
    print(f"rlhp: job {job_id} {status}")
    return EXIT_CODES[status]
