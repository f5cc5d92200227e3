"""RayJob objects for the rlhp jobs, and the Kubernetes API calls behind ``rlhp k8s``.

A RayJob here runs one entrypoint of ``jobs/`` on the long-lived RayCluster of
``deploy/k8s`` (``clusterSelector: ray.io/cluster=rlhp``), so jobs share its autoscaled
workers, its token authentication, the MLflow server and the run volume. KubeRay submits the
job from a submitter pod (a Kubernetes Job named like the RayJob) that follows the driver's
logs; ``rlhp k8s logs`` reads that pod.

The builders are pure functions (tested against the KubeRay CRD schema); the API functions
use the ``kubernetes`` client, imported lazily so that the ``rlhp`` CLI starts fast. Every
failure a user can fix (no kubeconfig, unreachable API server, unknown RayJob, KubeRay not
installed, bad ``--set``) is a one-line :class:`~rlhp.errors.ConfigError`.
"""

from __future__ import annotations

import copy
import re
import secrets
import shlex
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rlhp.errors import ConfigError

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"

DEFAULT_NAMESPACE = "rlhp"
DEFAULT_CLUSTER = "rlhp"  # the RayCluster of deploy/k8s/base/raycluster.yaml
DEFAULT_IMAGE = "rlhp:cpu"
TRACKING_URI = "http://mlflow:5000"  # the MLflow Service of deploy/k8s/base/mlflow.yaml
RUNS_DIR = "/mnt/rlhp-runs"  # the rlhp-runs volume, mounted on every Ray pod
FEEDBACK_TOKENS = "/etc/rlhp/feedback/tokens"  # Secret rlhp-feedback-tokens, on the head

# The restricted Pod Security Standard, which the rlhp namespace enforces.
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_OVERRIDE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class JobSpec:
    """One entrypoint of ``jobs/``: its script, fixed arguments and cluster-side overrides."""

    script: str
    description: str
    preset: str  # the config preset its --set overrides are checked against
    args: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()


JOBS: dict[str, JobSpec] = {
    "mujoco_synthetic": JobSpec(
        "jobs/mujoco_synthetic.py", "MuJoCo Hopper from synthetic labels", "mujoco_synthetic"
    ),
    "atari_synthetic": JobSpec(
        "jobs/atari_synthetic.py", "Atari from synthetic labels", "atari_synthetic"
    ),
    "human_feedback": JobSpec(
        "jobs/human_feedback.py",
        "a run labelled by people in the web app (port 8000 of the Ray head, Service rlhp-feedback)",
        "mujoco_human",
        overrides=("feedback.host=0.0.0.0", f"feedback.tokens_file={FEEDBACK_TOKENS}"),
    ),
    "sweep": JobSpec(
        "jobs/sweep.py",
        "Ray Tune sweep of jobs/sweeps/atari_paper.yaml",
        "atari_synthetic",  # the spec's preset
        args=("jobs/sweeps/atari_paper.yaml",),
    ),
}


# ---- building the RayJob ------------------------------------------------------------------


def resolve_job(job: str) -> JobSpec:
    """The job named ``job`` (``mujoco_synthetic``, ``mujoco-synthetic`` or ``jobs/...py``)."""
    key = job.removeprefix("jobs/").removesuffix(".py").replace("-", "_")
    if key not in JOBS:
        raise ConfigError(f"JOB: unknown job {job!r}; choose one of {', '.join(JOBS)}")
    return JOBS[key]


def job_key(job: str) -> str:
    """The canonical name of a job (the key of :data:`JOBS`)."""
    spec = resolve_job(job)
    return next(k for k, v in JOBS.items() if v is spec)


def check_name(value: str, what: str) -> str:
    """``value`` if it is a valid Kubernetes name (RFC 1123 label), else a ConfigError."""
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ConfigError(
            f"{what}: {value!r} is not a valid Kubernetes name; use at most 63 lowercase "
            "letters, digits and '-', starting and ending with a letter or digit"
        )
    return value


def job_overrides(job: str, overrides: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Every ``--set`` of the job's command line: the cluster's settings (MLflow server, run
    volume), the job's own, then the user's, so that the user's win."""
    cluster_side = [f"tracking.uri={TRACKING_URI}", f"runtime.runs_dir={RUNS_DIR}"]
    return [*cluster_side, *resolve_job(job).overrides, *overrides]


def check_overrides(job: str, overrides: list[str] | tuple[str, ...]) -> None:
    """Reject malformed ``--set`` values, and ones the job's config would refuse, before
    anything reaches the cluster (the job would fail there with the same message)."""
    for o in overrides:
        key, sep, _ = o.partition("=")
        if not sep or not _OVERRIDE_KEY.match(key.strip()):
            raise ConfigError(
                f"--set {o!r}: expected key=value with a dotted config field as key, "
                "e.g. --set learner.algo=trpo"
            )
    from rlhp.config import load_config, preset_names

    preset = resolve_job(job).preset
    load_config(preset if preset in preset_names() else "default", job_overrides(job, overrides))


def random_name(job: str) -> str:
    """``<job>-<5 random chars>``, e.g. ``mujoco-synthetic-x7k2q``: unique per submission."""
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(5))
    return f"{job_key(job).replace('_', '-')}-{suffix}"


def entrypoint(job: str, overrides: list[str] | tuple[str, ...] = ()) -> str:
    """The shell command the Ray job driver runs, in the image's WORKDIR (/home/rlhp)."""
    spec = resolve_job(job)
    argv = ["python", spec.script, *spec.args]
    for o in job_overrides(job, overrides):
        argv += ["--set", o]
    return shlex.join(argv)


def build_rayjob(
    job: str,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    name: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    image: str = DEFAULT_IMAGE,
    cluster: str = DEFAULT_CLUSTER,
) -> dict[str, Any]:
    """The RayJob that runs ``job`` on RayCluster ``cluster``.

    ``name=None`` gives ``metadata.generateName`` (for ``kubectl create -f``); ``image`` is
    the submitter pod's image (it needs the ``ray`` CLI; the job itself runs in the cluster's
    image). The submitter pod meets the restricted Pod Security Standard, like the cluster.
    """
    key = job_key(job)
    check_name(namespace, "--namespace")
    check_name(cluster, "--cluster")
    if not image.strip():
        raise ConfigError("--image: empty; give the rlhp image, e.g. --image rlhp:cpu")
    metadata: dict[str, Any] = {
        "namespace": namespace,
        "labels": {
            "app.kubernetes.io/name": "rlhp",
            "app.kubernetes.io/component": "job",
            "rlhp.io/job": key.replace("_", "-"),
        },
    }
    if name is None:
        metadata["generateName"] = f"{key.replace('_', '-')}-"
    else:
        metadata["name"] = check_name(name, "--name")
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RayJob",
        "metadata": metadata,
        "spec": {
            "clusterSelector": {"ray.io/cluster": cluster},
            "entrypoint": entrypoint(job, overrides),
            "submissionMode": "K8sJobMode",
            "submitterConfig": {"backoffLimit": 2},
            "submitterPodTemplate": {
                # the label NetworkPolicy ray-head-dashboard lets reach the head's :8265
                "metadata": {
                    "labels": {
                        "app.kubernetes.io/name": "rlhp",
                        "app.kubernetes.io/component": "job-submitter",
                    }
                },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": copy.deepcopy(POD_SECURITY_CONTEXT),
                    "containers": [
                        {
                            "name": "ray-job-submitter",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "resources": {
                                "requests": {"cpu": "200m", "memory": "256Mi"},
                                "limits": {"cpu": "500m", "memory": "512Mi"},
                            },
                            "securityContext": copy.deepcopy(CONTAINER_SECURITY_CONTEXT),
                        }
                    ],
                },
            },
        },
    }


def to_yaml(obj: dict[str, Any]) -> str:
    """YAML for ``kubectl create -f -`` (keys in the order built)."""
    import yaml

    return yaml.safe_dump(obj, sort_keys=False)


# ---- talking to the API server ------------------------------------------------------------

TIMEOUT = (10, 60)  # seconds: connect, read (a blackholed server fails in 10 s, not never)


def _load_config(context: str | None = None) -> Any:
    """An API client from the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``), or from the
    pod's service account when run inside a cluster without a kubeconfig."""
    import os

    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    # read $KUBECONFIG now: the client's own default is fixed when it is first imported
    where = os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        try:
            config.load_kube_config(where, context=context, client_configuration=cfg)
        except ConfigException:
            if context is not None or not os.environ.get("KUBERNETES_SERVICE_HOST"):
                raise
            config.load_incluster_config(client_configuration=cfg)
    except ConfigException as err:
        fix = (
            "list the contexts with kubectl config get-contexts"
            if context is not None
            else "set KUBECONFIG to your cluster's kubeconfig (or create ~/.kube/config)"
        )
        raise ConfigError(
            f"kubeconfig: no usable Kubernetes configuration in {where} ({_first_line(err)}); {fix}"
        ) from None
    except OSError as err:  # e.g. a certificate file the kubeconfig names is missing
        raise ConfigError(f"kubeconfig: {_first_line(err)}; fix the file it names") from None
    cfg.retries = 1  # an unreachable server fails at once, not after urllib3's retries
    return client.ApiClient(cfg)


def _first_line(err: object) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _api_call(api_client: Any, what: str, call: Any, not_found: str | None = None) -> Any:
    """Run ``call()``; turn the errors a user can act on into one-line ConfigErrors
    (``not_found``, when given, is the message for a 404)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    host = api_client.configuration.host
    try:
        return call()
    except ApiException as err:
        if err.status == 404 and not_found:
            raise ConfigError(not_found) from None
        raise ConfigError(_explain(err, what, host)) from None
    except (urllib3.exceptions.HTTPError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise ConfigError(
            f"kubernetes: cannot reach the API server at {host} ({_first_line(reason)}); "
            "check that the cluster is up and KUBECONFIG / --context point at it "
            "(kubectl cluster-info)"
        ) from None


def _explain(err: Any, what: str, host: str) -> str:
    status, reason = getattr(err, "status", None), getattr(err, "reason", "")
    if status == 401:
        return (
            f"kubernetes: the API server at {host} rejected the credentials (401 {reason}); "
            "log in again or refresh the kubeconfig"
        )
    if status == 403:
        return (
            f"kubernetes: not allowed to {what} (403 {reason}); ask for RBAC rights on "
            "rayjobs.ray.io, rayclusters.ray.io and pods/log in this namespace"
        )
    if status == 404:
        return (
            f"kubernetes: cannot {what}: the namespace or the ray.io/v1 kinds do not exist "
            "(404); install the KubeRay operator and apply deploy/k8s (docs/kubernetes.md)"
        )
    if status == 409:
        return f"--name: cannot {what}: it already exists (409); pick another --name"
    if status == 422:
        return f"kubernetes: the API server refused to {what} (422): {_first_line(err.body)}"
    return f"kubernetes: cannot {what} ({status} {reason}); see kubectl get events"


def cluster_image(cluster: str, namespace: str, context: str | None = None) -> str:
    """The image of RayCluster ``cluster``'s head: the default image of the submitter pod.

    Also checks that the cluster exists before a RayJob waits for it forever."""
    from kubernetes import client

    api_client = _load_config(context)
    api = client.CustomObjectsApi(api_client)
    obj = _api_call(
        api_client,
        f"read RayCluster {cluster}",
        lambda: api.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "rayclusters", cluster, _request_timeout=TIMEOUT
        ),
        not_found=f"--cluster: no RayCluster {cluster!r} in namespace {namespace!r}; "
        "apply deploy/k8s first (kubectl apply -k deploy/k8s/overlays/cpu or gpu)",
    )
    return obj["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]


def submit(obj: dict[str, Any], context: str | None = None) -> dict[str, Any]:
    """Create the RayJob ``obj``; return the created object (with its final name)."""
    from kubernetes import client

    api_client = _load_config(context)
    api = client.CustomObjectsApi(api_client)
    ns = obj["metadata"]["namespace"]
    return _api_call(
        api_client,
        "create the RayJob",
        lambda: api.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, obj, _request_timeout=TIMEOUT
        ),
    )


def get_rayjob(name: str, namespace: str, context: str | None = None) -> dict[str, Any]:
    """The RayJob ``name``, or a ConfigError naming it when it does not exist."""
    from kubernetes import client

    check_name(name, "NAME")
    check_name(namespace, "--namespace")
    api_client = _load_config(context)
    return _get(api_client, client.CustomObjectsApi(api_client), name, namespace)


def _get(api_client: Any, api: Any, name: str, namespace: str) -> dict[str, Any]:
    return _api_call(
        api_client,
        f"read RayJob {name}",
        lambda: api.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, _request_timeout=TIMEOUT
        ),
        not_found=f"NAME: no RayJob {name!r} in namespace {namespace!r}; list them with "
        f"kubectl -n {namespace} get rayjobs",
    )


def summarize(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """The lines ``rlhp k8s status`` prints: (field, value), from ``.status``."""
    st = obj.get("status") or {}
    selector = obj["spec"].get("clusterSelector") or {}
    rows = [
        ("name", obj["metadata"]["name"]),
        ("namespace", obj["metadata"].get("namespace", "")),
        ("job status", st.get("jobStatus") or "PENDING"),
        ("deployment status", st.get("jobDeploymentStatus") or "New"),
        ("ray cluster", st.get("rayClusterName") or selector.get("ray.io/cluster", "")),
        ("ray job id", st.get("jobId", "")),
        ("dashboard", st.get("dashboardURL", "")),
        ("started", st.get("startTime", "")),
        ("ended", st.get("endTime", "")),
        ("entrypoint", obj["spec"].get("entrypoint", "")),
    ]
    if st.get("reason") or st.get("message"):
        rows.append(("message", " ".join(x for x in (st.get("reason"), st.get("message")) if x)))
    return [(k, str(v)) for k, v in rows if v != ""]


def logs(
    name: str, namespace: str, follow: bool = False, context: str | None = None
) -> Iterator[str]:
    """The job's logs: those of its newest submitter pod, which follows the Ray job driver
    (the submitter is a Kubernetes Job named like the RayJob, so its pods carry job-name)."""
    from kubernetes import client

    check_name(name, "NAME")
    check_name(namespace, "--namespace")
    api_client = _load_config(context)
    obj = _get(api_client, client.CustomObjectsApi(api_client), name, namespace)
    core = client.CoreV1Api(api_client)
    pods = _api_call(
        api_client,
        f"list the submitter pods of {name}",
        lambda: core.list_namespaced_pod(
            namespace, label_selector=f"job-name={name}", _request_timeout=TIMEOUT
        ),
    ).items
    if not pods:
        state = (obj.get("status") or {}).get("jobDeploymentStatus") or "New"
        raise ConfigError(
            f"NAME: RayJob {name!r} has no submitter pod yet (deployment status {state}); "
            f"retry shortly, or see rlhp k8s status {name}"
        )
    pod = max(pods, key=lambda p: p.metadata.creation_timestamp).metadata.name
    if not follow:
        text = _api_call(
            api_client,
            f"read the logs of pod {pod}",
            lambda: core.read_namespaced_pod_log(pod, namespace, _request_timeout=TIMEOUT),
        )
        yield from text.splitlines(keepends=True)
        return
    resp = _api_call(
        api_client,
        f"follow the logs of pod {pod}",
        lambda: core.read_namespaced_pod_log(
            pod, namespace, follow=True, _preload_content=False, _request_timeout=(TIMEOUT[0], None)
        ),
    )
    try:
        for chunk in resp.stream(4096):
            yield chunk.decode("utf-8", errors="replace")
    finally:
        resp.release_conn()
