"""deploy/k8s renders, validates and is locked down.

Each kustomization is rendered with the real ``kubectl kustomize``; every core object is
validated offline by ``kubernetes-validate`` (strict: unknown fields fail), and every KubeRay
object against the CRD schemas in ``../shared/kuberay-crds`` (read in place, made strict the
way the API server's field validation is). Then the settings the deployment depends on are
asserted: Ray token auth, autoscaling, GPU requests matching ``rayStartParams``, non-root and
unprivileged pods with requests and limits, MLflow on PostgreSQL behind a password, secrets
mounted as files (never environment variables or arguments), no service account token but
the autoscaler's, NetworkPolicies that allow only rlhp's own connections, the labelling app's
Service and TLS Ingress, and RayJob files that equal what ``rlhp k8s submit`` builds.
"""

from __future__ import annotations

import copy
import io
import re
import shlex
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from rlhp.cli import main
from rlhp.cluster import k8s

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
CRD_DIR = REPO.parent / "shared" / "kuberay-crds"
KUBERNETES_VERSION = "1.32"  # the kubectl CI uses; the oldest API these manifests target
# libyaml when there: the three CRDs are 60k lines, a few seconds for the pure-Python parser
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
KUSTOMIZATIONS = ["base", "overlays/cpu", "overlays/gpu"]
RAY_KINDS = {"RayCluster": "rayclusters", "RayJob": "rayjobs", "RayService": "rayservices"}
JOB_FILES = sorted((K8S / "jobs").glob("*.yaml"))


# ---- rendering and validators -------------------------------------------------------------


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl not found on PATH; install kubectl >= 1.27 (CI has /usr/bin/kubectl)")
    return path


def render(kustomization: str) -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/k8s/<kustomization>``, parsed."""
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"kubectl kustomize {kustomization} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {k: render(k) for k in KUSTOMIZATIONS}


def load_job_file(path: Path) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(docs) == 1, f"{path}: one RayJob per file"
    return docs[0]


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields rejected, as the API server's strict field
    validation (``kubectl apply --validate=strict``) does: every object schema that lists
    its properties and does not preserve unknown fields gets ``additionalProperties: false``."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def crd_validators() -> dict[str, jsonschema.Draft7Validator]:
    """One validator per KubeRay kind, from ``../shared/kuberay-crds`` (read, never copied)."""
    if not CRD_DIR.is_dir():
        pytest.fail(f"KubeRay CRDs not found at {CRD_DIR}; check out ../shared next to the repo")
    validators = {}
    for kind, plural in RAY_KINDS.items():
        crd = yaml.load((CRD_DIR / f"ray.io_{plural}.yaml").read_text(), Loader=SafeLoader)
        assert crd["spec"]["names"]["kind"] == kind
        (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        validators[kind] = jsonschema.Draft7Validator(strict(v1["schema"]["openAPIV3Schema"]))
    return validators


def crd_errors(validators: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    assert obj["apiVersion"] == "ray.io/v1", obj["apiVersion"]
    errors = validators[obj["kind"]].iter_errors(obj)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def is_ray(obj: dict[str, Any]) -> bool:
    return obj["apiVersion"].startswith("ray.io/")


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


# ---- pods: every pod template the manifests create ---------------------------------------


def pod_specs(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod spec) for every pod template in ``obj``."""
    kind, name, spec = obj["kind"], obj["metadata"].get("name", "?"), obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return [(f"{kind}/{name}", spec["template"]["spec"])]
    if kind == "RayCluster":
        out = [(f"RayCluster/{name}/head", spec["headGroupSpec"]["template"]["spec"])]
        for g in spec.get("workerGroupSpecs", []):
            out.append((f"RayCluster/{name}/{g['groupName']}", g["template"]["spec"]))
        return out
    if kind == "RayJob":
        return [(f"RayJob/{name}/submitter", spec["submitterPodTemplate"]["spec"])]
    return []


def ray_groups(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = cluster["spec"]
    return {"head": spec["headGroupSpec"], **{g["groupName"]: g for g in spec["workerGroupSpecs"]}}


def all_objects(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [o for objs in rendered.values() for o in objs] + [load_job_file(p) for p in JOB_FILES]


# ---- rendering and schema validation ------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kustomization_renders_the_whole_deployment(rendered, kustomization):
    objs = rendered[kustomization]
    kinds = sorted(o["kind"] for o in objs)
    expected = ["Namespace", "RayCluster", "StatefulSet", "Deployment", "Ingress"]
    expected += ["PersistentVolumeClaim"] * 2 + ["Service"] * 3 + ["NetworkPolicy"] * 6
    assert kinds == sorted(expected)
    for o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == k8s.DEFAULT_NAMESPACE, o["metadata"]["name"]
    # credentials are created with kubectl (docs/kubernetes.md), never rendered from the repo
    assert not [o for o in objs if o["kind"] == "Secret"]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_core_objects_validate_with_kubernetes_validate(rendered, kustomization):
    core = [o for o in rendered[kustomization] if not is_ray(o)]
    assert len(core) == 15
    for obj in core:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_ray_objects_validate_against_the_kuberay_crds(rendered, crd_validators):
    ray_objs = [o for objs in rendered.values() for o in objs if is_ray(o)]
    ray_objs += [load_job_file(p) for p in JOB_FILES]
    assert {o["kind"] for o in ray_objs} == {"RayCluster", "RayJob"}
    assert len(ray_objs) == len(KUSTOMIZATIONS) + len(k8s.JOBS)
    for obj in ray_objs:
        assert obj["kind"] in RAY_KINDS
        assert crd_errors(crd_validators, obj) == [], obj["kind"]


def test_the_validators_reject_mistakes(rendered, crd_validators):
    """The checks above can fail: a misspelt field, a wrong type, a missing required field."""
    cluster = one(rendered["base"], "RayCluster")
    typo = copy.deepcopy(cluster)
    typo["spec"]["enableInTreeAutoscalling"] = typo["spec"].pop("enableInTreeAutoscaling")
    assert any("enableInTreeAutoscalling" in e for e in crd_errors(crd_validators, typo))
    wrong_type = copy.deepcopy(cluster)
    wrong_type["spec"]["workerGroupSpecs"][0]["rayStartParams"] = {"num-cpus": 4}
    assert crd_errors(crd_validators, wrong_type)
    missing = copy.deepcopy(cluster)
    del missing["spec"]["workerGroupSpecs"][0]["maxReplicas"]
    assert crd_errors(crd_validators, missing)
    bad_auth = copy.deepcopy(cluster)
    bad_auth["spec"]["authOptions"]["mode"] = "on"
    assert crd_errors(crd_validators, bad_auth)
    job = load_job_file(JOB_FILES[0])
    job["spec"]["submitterPodTemplate"]["spec"]["containers"][0]["imagePullPolicy"] = 1
    assert crd_errors(crd_validators, job)

    deployment = copy.deepcopy(one(rendered["base"], "Deployment", "mlflow"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_rlhp_k8s_submit_objects_validate_against_the_rayjob_crd(crd_validators):
    """What ``rlhp k8s submit`` creates, with every option, is a valid RayJob."""
    for job in k8s.JOBS:
        out = io.StringIO()
        with redirect_stdout(out):
            argv = ["k8s", "submit", job, "--dry-run", "--name", f"{job.replace('_', '-')}-1"]
            argv += ["--namespace", "team-a", "--image", "registry.example/rlhp:cuda"]
            argv += ["--cluster", "big", "--set", "total_steps=5000", "--set", "seed=3"]
            assert main(argv) == 0
        obj = yaml.safe_load(out.getvalue())
        assert crd_errors(crd_validators, obj) == [], job
        assert obj["metadata"]["name"] == f"{job.replace('_', '-')}-1"
        assert obj["metadata"]["namespace"] == "team-a"
        assert obj["spec"]["clusterSelector"] == {"ray.io/cluster": "big"}
        (container,) = obj["spec"]["submitterPodTemplate"]["spec"]["containers"]
        assert container["image"] == "registry.example/rlhp:cuda"


# ---- what the deployment depends on -------------------------------------------------------


def test_every_pod_is_non_root_unprivileged_and_bounded(rendered):
    namespace = one(rendered["base"], "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    checked = 0
    for obj in all_objects(rendered):
        for where, pod in pod_specs(obj):
            checked += 1
            psc = pod.get("securityContext", {})
            assert psc.get("runAsNonRoot") is True, where
            assert psc.get("runAsUser", 0) != 0, where
            assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            for key in ("hostNetwork", "hostPID", "hostIPC"):
                assert not pod.get(key), f"{where}: {key}"
            assert not [v for v in pod.get("volumes", []) if "hostPath" in v], where
            for c in pod.get("initContainers", []) + pod["containers"]:
                sc = c.get("securityContext", {})
                assert sc.get("privileged", False) is False, f"{where}/{c['name']}"
                assert sc.get("allowPrivilegeEscalation") is False, f"{where}/{c['name']}"
                assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}/{c['name']}"
                assert not sc.get("capabilities", {}).get("add"), f"{where}/{c['name']}"
                assert sc.get("runAsUser", 1) != 0, f"{where}/{c['name']}"
                for part in ("requests", "limits"):
                    res = c.get("resources", {}).get(part, {})
                    assert {"cpu", "memory"} <= res.keys(), f"{where}/{c['name']} {part}"
    assert checked == 3 * 2 + 2 * 3 + 1 * 2 + len(JOB_FILES)  # base, gpu, cpu overlays; jobs


def test_the_autoscaler_sidecar_is_locked_down_too(rendered):
    for objs in rendered.values():
        opts = one(objs, "RayCluster")["spec"]["autoscalerOptions"]
        sc = opts["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and sc["runAsNonRoot"] is True
        assert {"cpu", "memory"} <= opts["resources"]["limits"].keys()


def test_ray_token_auth_is_on_for_every_ray_container(rendered):
    for name, objs in rendered.items():
        cluster = one(objs, "RayCluster")
        auth = cluster["spec"]["authOptions"]
        assert auth["mode"] == "token", name
        assert not auth.get("enableK8sTokenAuth"), name  # unsupported for RayJobs
        secret = auth["secretName"]
        for group, spec in ray_groups(cluster).items():
            pod = spec["template"]["spec"]
            env = {e["name"]: e for e in pod["containers"][0]["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token", f"{name}/{group}"
            # the token is a file from the Secret, never an environment variable
            assert "RAY_AUTH_TOKEN" not in env, f"{name}/{group}"
            path = Path(env["RAY_AUTH_TOKEN_PATH"]["value"])
            mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
            mount = mounts[str(path.parent)]
            assert mount["readOnly"] is True, f"{name}/{group}"
            volume = {v["name"]: v for v in pod["volumes"]}[mount["name"]]["secret"]
            assert volume["secretName"] == secret, f"{name}/{group}"
            assert {"key": "auth_token", "path": path.name} in volume["items"], f"{name}/{group}"


def test_cpu_workers_autoscale(rendered):
    for name, objs in rendered.items():
        spec = one(objs, "RayCluster")["spec"]
        assert spec["enableInTreeAutoscaling"] is True, name
        assert spec["rayVersion"] == "2.60.0", name
        cpu = ray_groups(one(objs, "RayCluster"))["cpu-workers"]
        assert 1 <= cpu["minReplicas"] <= cpu["replicas"] < cpu["maxReplicas"], name
        res = cpu["template"]["spec"]["containers"][0]["resources"]
        assert res["requests"] == res["limits"], name  # Ray sizes itself from the limits
        assert "nvidia.com/gpu" not in res["limits"], name


@pytest.mark.parametrize("kustomization", ["base", "overlays/gpu"])
def test_gpu_workers_request_the_gpus_ray_advertises(rendered, kustomization):
    group = ray_groups(one(rendered[kustomization], "RayCluster"))["gpu-workers"]
    (container,) = group["template"]["spec"]["containers"]
    gpus = container["resources"]["limits"]["nvidia.com/gpu"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus
    assert int(gpus) >= 1 and group["rayStartParams"]["num-gpus"] == str(gpus)
    assert group["minReplicas"] <= group["maxReplicas"] and group["maxReplicas"] >= 1
    tolerations = group["template"]["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    if kustomization == "overlays/gpu":
        assert group["minReplicas"] >= 1  # a GPU is there when a job starts


def test_cpu_overlay_has_no_gpu_anywhere(rendered):
    cluster = one(rendered["overlays/cpu"], "RayCluster")
    assert set(ray_groups(cluster)) == {"head", "cpu-workers"}
    assert "nvidia.com/gpu" not in yaml.safe_dump(rendered["overlays/cpu"])


def test_overlays_pick_the_image_the_dockerfile_builds(rendered):
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "USER 1000:1000" in dockerfile and "WORKDIR /home/rlhp" in dockerfile
    for name, tag in (("overlays/cpu", "rlhp:cpu"), ("overlays/gpu", "rlhp:cuda")):
        assert f"-t {tag}" in dockerfile
        objs = rendered[name]
        images = {
            c["image"]
            for o in objs
            for _, pod in pod_specs(o)
            for c in pod["containers"]
            if c["image"].startswith("rlhp")
        }
        assert images == {tag}, name
        cluster = one(objs, "RayCluster")
        for spec in ray_groups(cluster).values():
            pod = spec["template"]["spec"]
            assert pod["securityContext"]["runAsUser"] == 1000  # the Dockerfile's USER
            # the job entrypoints (python jobs/<name>.py) are relative to the WORKDIR
            assert pod["containers"][0]["workingDir"] == "/home/rlhp"
    # psycopg2 for MLflow's PostgreSQL store is in the image
    assert "psycopg2" in dockerfile


def test_mlflow_uses_postgres_and_credentials_from_secrets(rendered):
    objs = rendered["base"]
    service = one(objs, "Service", "mlflow")
    port = service["spec"]["ports"][0]["port"]
    assert f"http://{service['metadata']['name']}:{port}" == k8s.TRACKING_URI
    pod = one(objs, "Deployment", "mlflow")["spec"]["template"]["spec"]
    (mlflow,) = pod["containers"]
    args = " ".join(mlflow["command"] + mlflow["args"])
    # no user or password in the URI: libpq takes PGUSER and the password file
    assert "--backend-store-uri=postgresql+psycopg2://mlflow-postgres:5432/mlflow" in args
    assert "--serve-artifacts" in args and "--artifacts-destination=/mlflow/artifacts" in args
    env = {e["name"]: e for e in mlflow["env"]}
    assert env["PGUSER"]["valueFrom"]["secretKeyRef"] == {
        "name": "rlhp-mlflow-db",
        "key": "username",
    }
    (init,) = pod["initContainers"]
    script = init["command"][-1]
    assert f"> {env['PGPASSFILE']['value']}" in script and "umask 077" in script  # libpq: 0600
    assert "$(cat /etc/rlhp/mlflow-db/password)" in script
    volumes = {v["name"]: v for v in pod["volumes"]}
    init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    assert volumes[init_mounts["/etc/rlhp/mlflow-db"]]["secret"]["secretName"] == "rlhp-mlflow-db"
    assert volumes[init_mounts[str(Path(env["PGPASSFILE"]["value"]).parent)]]["emptyDir"] == {
        "medium": "Memory", "sizeLimit": "1Mi"
    }  # fmt: skip
    hosts = env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].split(",")
    assert "mlflow:*" in hosts and "localhost:*" in hosts  # in-cluster and port-forward
    mounts = {m["mountPath"]: m["name"] for m in mlflow["volumeMounts"]}
    assert mounts["/mlflow/artifacts"] == "artifacts"
    one(objs, "PersistentVolumeClaim", "mlflow-artifacts")

    (pg,) = one(objs, "StatefulSet", "mlflow-postgres")["spec"]["template"]["spec"]["containers"]
    pg_pod = one(objs, "StatefulSet", "mlflow-postgres")["spec"]["template"]["spec"]
    pg_env = {e["name"]: e for e in pg["env"]}
    pg_mounts = {m["mountPath"]: m["name"] for m in pg["volumeMounts"]}
    pg_volumes = {v["name"]: v for v in pg_pod["volumes"]}
    for var, key in (("POSTGRES_USER_FILE", "username"), ("POSTGRES_PASSWORD_FILE", "password")):
        path = Path(pg_env[var]["value"])
        assert path.name == key  # the Secret's key, as a file
        assert pg_volumes[pg_mounts[str(path.parent)]]["secret"]["secretName"] == "rlhp-mlflow-db"
    assert one(objs, "Service", "mlflow-postgres")["spec"]["ports"][0]["port"] == 5432
    # MLflow is behind its basic-auth app, configured from the generated file
    assert "--app-name=basic-auth" in args
    assert str(Path(env["MLFLOW_AUTH_CONFIG_PATH"]["value"]).parent) == str(
        Path(env["PGPASSFILE"]["value"]).parent
    )
    assert "basic_auth.ini" in script and "$(cat /etc/rlhp/mlflow-auth/password)" in script
    assert "MLFLOW_FLASK_SERVER_SECRET_KEY" not in env  # read from its file at start
    assert '"$(cat /etc/rlhp/mlflow-auth/flask_secret_key)"' in mlflow["command"][-2]
    assert mlflow["readinessProbe"]["httpGet"]["path"] == "/health"  # the one open route
    assert '"mlflow[auth]' in (REPO / "Dockerfile").read_text()  # the auth app's dependencies


def containers_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod.get("initContainers", []) + pod["containers"]


def test_secrets_are_mounted_files_never_env_or_arguments(rendered):
    """The Ray token, the database password and MLflow's passwords reach processes as
    read-only files; no env var takes a Secret's value but a user name, no command line
    names a secret, and env vars named like secrets only hold file paths."""
    secret_keys = {"auth_token", "password", "flask_secret_key", "credentials", "tokens"}
    for obj in all_objects(rendered):
        for where, pod in pod_specs(obj):
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for c in containers_of(pod):
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    assert ref is None or ref["key"] == "username", f"{where}/{c['name']}: {e}"
                    if any(w in e["name"] for w in ("PASSWORD", "TOKEN", "SECRET", "PASSFILE")):
                        assert e["value"].startswith("/"), f"{where}/{c['name']}: {e['name']}"
                assert not c.get("envFrom"), f"{where}/{c['name']}"
                line = " ".join(c.get("command", []) + c.get("args", []))
                assert not re.search(r"\$\((\w*(PASSWORD|TOKEN|SECRET)\w*)\)", line), where
                for m in c.get("volumeMounts", []):
                    secret = volumes.get(m["name"], {}).get("secret")  # or a claim template
                    if secret is not None:
                        assert m.get("readOnly") is True, f"{where}/{c['name']}: {m['name']}"
                        assert secret["defaultMode"] <= 0o440, f"{where}: {m['name']}"
            for v in volumes.values():
                if "secret" in v and v["secret"].get("items"):
                    assert {i["key"] for i in v["secret"]["items"]} <= secret_keys | {"username"}


def test_only_the_autoscaler_gets_a_kubernetes_api_token(rendered):
    for name, objs in rendered.items():
        cluster = one(objs, "RayCluster")
        for obj in all_objects({name: objs}):
            for where, pod in pod_specs(obj):
                if obj["kind"] != "Namespace":
                    assert pod.get("automountServiceAccountToken") is False, f"{name}: {where}"
        head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
        (mount,) = cluster["spec"]["autoscalerOptions"]["volumeMounts"]
        assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
        assert mount["readOnly"] is True
        sources = {v["name"]: v for v in head["volumes"]}[mount["name"]]["projected"]["sources"]
        assert {"path": "token", "expirationSeconds": 3607} in [
            s.get("serviceAccountToken") for s in sources
        ]
        for c in head["containers"]:  # the Ray container does not mount it
            assert mount["mountPath"] not in {m["mountPath"] for m in c.get("volumeMounts", [])}


def test_every_ray_pod_reads_mlflow_credentials_from_a_file(rendered):
    for name, objs in rendered.items():
        for group, spec in ray_groups(one(objs, "RayCluster")).items():
            pod = spec["template"]["spec"]
            mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
            mount = mounts["/home/rlhp/.mlflow"]  # ~/.mlflow/credentials of uid 1000
            secret = {v["name"]: v for v in pod["volumes"]}[mount["name"]]["secret"]
            assert secret["secretName"] == "rlhp-mlflow-auth", f"{name}/{group}"
            assert secret["items"] == [{"key": "credentials", "path": "credentials"}]


# ---- network: who may connect to what -----------------------------------------------------


def pod_labels(objs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Labels of each kind of pod at run time (KubeRay adds ray.io/cluster and node-type)."""
    cluster = one(objs, "RayCluster")
    name = cluster["metadata"]["name"]
    out = {}
    for group, spec in ray_groups(cluster).items():
        kind = "head" if group == "head" else "worker"
        out[f"ray-{group}"] = spec["template"]["metadata"]["labels"] | {
            "ray.io/cluster": name, "ray.io/node-type": kind
        }  # fmt: skip
    for kind in ("Deployment", "StatefulSet"):
        for o in objs:
            if o["kind"] == kind:
                out[o["metadata"]["name"]] = o["spec"]["template"]["metadata"]["labels"]
    job = load_job_file(JOB_FILES[0])
    out["job-submitter"] = job["spec"]["submitterPodTemplate"]["metadata"]["labels"]
    return out


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def allowed(policies: list[dict[str, Any]], target: dict[str, str], source: dict[str, str] | None,
            namespace: str, port: int) -> bool:  # fmt: skip
    """Whether ``source`` pod (or any pod of ``namespace`` when None) may reach ``port``."""
    for p in policies:
        if not selects(p["spec"]["podSelector"], target):
            continue
        for rule in p["spec"].get("ingress", []):
            ports = [x["port"] for x in rule.get("ports", [])]
            if ports and port not in ports:
                continue
            for peer in rule.get("from", []):
                local = "podSelector" in peer and source is not None and namespace == "rlhp"
                if local and selects(peer["podSelector"], source):
                    return True
                ns = peer.get("namespaceSelector", {}).get("matchLabels", {})
                if ns and ns == {"kubernetes.io/metadata.name": namespace}:
                    return True
    return False


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_network_policies_allow_only_rlhps_own_connections(rendered, kustomization):
    objs = rendered[kustomization]
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    deny = one(objs, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}  # everything else: denied
    pods = pod_labels(objs)
    head, workers = pods["ray-head"], pods["ray-cpu-workers"]
    mlflow, postgres = pods["mlflow"], pods["mlflow-postgres"]

    def can(source: str | None, target: dict[str, str], port: int, ns: str = "rlhp") -> bool:
        return allowed(policies, target, pods[source] if source else None, ns, port)

    for port in (6379, 8265, 10001, 12345):  # Ray pods talk to each other on any port
        assert can("ray-cpu-workers", head, port) and can("ray-head", workers, port)
    assert can("job-submitter", head, 8265) and not can("job-submitter", head, 6379)
    assert can(None, head, 8265, ns="kuberay-system")  # the operator reads job status
    assert can(None, head, 8000, ns="ingress-nginx")  # the labelling app, through the Ingress
    assert not can("job-submitter", head, 8000) and not can(None, head, 8000, ns="other")
    assert can("ray-head", mlflow, 5000) and can("ray-cpu-workers", mlflow, 5000)
    assert not can("job-submitter", mlflow, 5000) and not can("ray-head", mlflow, 22)
    assert can("mlflow", postgres, 5432)
    assert not can("ray-head", postgres, 5432) and not can("ray-cpu-workers", postgres, 5432)
    assert not can("mlflow", head, 8265) and not can(None, mlflow, 5000, ns="ingress-nginx")


def test_the_labelling_app_is_served_behind_tls(rendered):
    objs = rendered["base"]
    ingress = one(objs, "Ingress", "rlhp-feedback")["spec"]
    (tls,) = ingress["tls"]
    assert tls["secretName"] == "rlhp-feedback-tls"
    (rule,) = ingress["rules"]
    assert rule["host"] in tls["hosts"]  # every host it serves has the certificate
    (path,) = rule["http"]["paths"]
    service = one(objs, "Service", "rlhp-feedback")
    assert path["backend"]["service"]["name"] == service["metadata"]["name"]
    assert path["backend"]["service"]["port"]["name"] == service["spec"]["ports"][0]["name"]
    notes = one(objs, "Ingress", "rlhp-feedback")["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"  # no plain HTTP
    from rlhp.feedback_app.config import FeedbackConfig

    cap = notes["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(cap.removesuffix("k")) * 1024 == FeedbackConfig().max_body_bytes


def test_the_labelling_app_is_exposed_on_the_ray_head(rendered):
    objs = rendered["base"]
    cluster = one(objs, "RayCluster")
    service = one(objs, "Service", "rlhp-feedback")
    assert service["spec"]["selector"] == {
        "ray.io/cluster": cluster["metadata"]["name"],
        "ray.io/node-type": "head",
    }
    (port,) = service["spec"]["ports"]
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in head["containers"][0]["ports"]}
    assert ports[port["targetPort"]] == 8000 == port["port"]
    # the tokens file the human_feedback job is given is the head's Secret mount
    mounts = {m["name"]: m for m in head["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in head["volumes"]}
    mount = mounts["feedback-tokens"]
    assert mount["readOnly"] is True
    assert str(Path(k8s.FEEDBACK_TOKENS).parent) == mount["mountPath"]
    assert volumes["feedback-tokens"]["secret"]["secretName"] == "rlhp-feedback-tokens"
    assert f"feedback.tokens_file={k8s.FEEDBACK_TOKENS}" in k8s.entrypoint("human_feedback")
    assert "feedback.host=0.0.0.0" in k8s.entrypoint("human_feedback")


def test_every_ray_pod_mounts_the_run_volume(rendered):
    for name, objs in rendered.items():
        claim = one(objs, "PersistentVolumeClaim", "rlhp-runs")
        modes = ["ReadWriteOnce"] if name == "overlays/cpu" else ["ReadWriteMany"]
        assert claim["spec"]["accessModes"] == modes, name
        for group, spec in ray_groups(one(objs, "RayCluster")).items():
            pod = spec["template"]["spec"]
            volumes = {v["name"]: v for v in pod["volumes"]}
            mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
            assert volumes["rlhp-runs"]["persistentVolumeClaim"]["claimName"] == "rlhp-runs"
            assert mounts["rlhp-runs"] == k8s.RUNS_DIR, f"{name}/{group}"
    assert f"runtime.runs_dir={k8s.RUNS_DIR}" in k8s.entrypoint("mujoco_synthetic")


def test_job_files_are_what_rlhp_k8s_submit_builds(rendered):
    assert [p.stem for p in JOB_FILES] == sorted(j.replace("_", "-") for j in k8s.JOBS)
    cluster = one(rendered["base"], "RayCluster")
    for path in JOB_FILES:
        job = path.stem.replace("-", "_")
        obj = load_job_file(path)
        assert obj == k8s.build_rayjob(job), f"{path} differs from rlhp k8s submit {job}"
        assert obj["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
        assert obj["metadata"]["namespace"] == k8s.DEFAULT_NAMESPACE
        argv = shlex.split(obj["spec"]["entrypoint"])
        assert argv[:2] == ["python", k8s.JOBS[job].script]  # relative to the image's WORKDIR
        assert f"tracking.uri={k8s.TRACKING_URI}" in argv
    assert (
        "WORKDIR /home/rlhp\nCOPY --chown=1000:1000 jobs ./jobs"
        in (REPO / "Dockerfile").read_text()
    )
