"""The Kubernetes manifests (deploy/k8s), validated statically: no cluster can run on this project's machines.

Every overlay is rendered with `kubectl kustomize`, and so is the base and the dev overlay with the optional
dashboard component added (as an overlay of one's own adds it); every object is validated against the
Kubernetes API schemas (the kubernetes-validate package bundles them, offline) of the oldest and newest
versions we target; policy tests read the rendered objects the way Kubernetes would.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from .policy import (
    Endpoint,
    connection_allowed,
    containers,
    pod_labels,
    restricted_violations,
    selects,
    workloads,
)

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
DASHBOARD_COMPONENT = "components/dashboard"
# `DIR+COMPONENT`: DIR with the component added, the way an overlay of one's own adds it
WITH_DASHBOARD = [f"base+{DASHBOARD_COMPONENT}", f"overlays/dev+{DASHBOARD_COMPONENT}"]
OVERLAYS = ["base", "overlays/dev", "overlays/gpu", "overlays/gvisor", *WITH_DASHBOARD]
# 1.29: the oldest release we support (gRPC probes are GA since 1.27, sidecar-free); 1.37: the newest bundled
VERSIONS = ["1.29.0", "1.37.0"]
NAMESPACE = "elm"
CLUSTER_SCOPED = {"Namespace", "RuntimeClass"}
EVALUATOR = {"app.kubernetes.io/component": "evaluator"}
DASHBOARD = {"app.kubernetes.io/component": "dashboard"}


def kustomize(directory: Path) -> tuple[dict, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("ELM_REQUIRE_KUBECTL") == "1":
            pytest.fail("ELM_REQUIRE_KUBECTL=1 but kubectl is not installed")
        pytest.skip("kubectl is not installed (it renders the kustomizations)")
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return tuple(obj for obj in yaml.safe_load_all(done.stdout) if obj)


def kustomize_overlay(resources: list[str], components: list[str], **fields: object) -> tuple[dict, ...]:
    """Renders an overlay of one's own, written in a temporary directory: `resources` and `components` are
    directories under deploy/k8s (kustomize takes only relative paths), `fields` more of its fields."""
    with tempfile.TemporaryDirectory(prefix="elm-overlay-") as directory:
        here = Path(directory)
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(K8S / r, here) for r in resources],
            "components": [os.path.relpath(K8S / c, here) for c in components],
            **fields,
        }
        (here / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return kustomize(here)


@functools.cache
def render(overlay: str) -> tuple[dict, ...]:
    """`overlay`: a directory under deploy/k8s, or `DIR+COMPONENT...` for DIR with those components added."""
    directory, *components = overlay.split("+")
    if components:
        return kustomize_overlay([directory], components)
    return kustomize(K8S / directory)


def of_kind(objects: tuple[dict, ...], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: tuple[dict, ...], kind: str, name: str) -> dict:
    [obj] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def evaluator_specs(objects: tuple[dict, ...]) -> list[dict]:
    specs = [
        spec for obj, spec in workloads(list(objects)) if selects({"matchLabels": EVALUATOR}, pod_labels(obj))
    ]
    assert specs, "no evaluator pods"
    return specs


overlays = pytest.mark.parametrize("overlay", OVERLAYS)


@overlays
@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str, version: str) -> None:
    objects = render(overlay)
    assert len(objects) >= 19
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)  # raises on an unknown or mistyped field


@overlays
def test_everything_lives_in_the_restricted_namespace(overlay: str) -> None:
    objects = render(overlay)
    namespace = named(objects, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]["name"]


@overlays
def test_every_pod_meets_the_restricted_pod_security_standard(overlay: str) -> None:
    # enforced by the namespace: a pod that breaks it would be refused by the cluster
    problems = {
        obj["metadata"]["name"]: restricted_violations(spec) for obj, spec in workloads(list(render(overlay)))
    }
    assert problems and not any(problems.values()), problems


@overlays
def test_every_grpc_service_serves_tls_with_its_own_certificate(overlay: str) -> None:
    for obj, spec in workloads(list(render(overlay))):
        for c in containers(spec):
            if not any(p["name"] == "grpc" for p in c.get("ports", [])):
                continue
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            party = env["ELM_TLS_NAME"]
            [certs] = [m for m in c["volumeMounts"] if m["mountPath"] == env["ELM_TLS_DIR"]]
            [secret] = [v["secret"] for v in spec["volumes"] if v["name"] == certs["name"]]
            assert secret["secretName"] == f"elm-tls-{party}", obj["metadata"]["name"]
            if party == "coordinator":
                [tokens] = [m for m in c["volumeMounts"] if env["ELM_TOKENS_FILE"].startswith(m["mountPath"])]
                assert tokens["readOnly"]


@overlays
def test_evaluator_pods_are_locked_down(overlay: str) -> None:
    for spec in evaluator_specs(render(overlay)):
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in containers(spec):
            ctx = c["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"] and "add" not in ctx["capabilities"]
            health_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "health")
            for probe in ("readinessProbe", "livenessProbe"):
                assert c[probe]["grpc"]["port"] == health_port, probe  # the gRPC health protocol, plaintext
            env = {e["name"]: e["value"] for e in c["env"]}
            assert env["ELM_HEALTH_PORT"] == str(health_port) and env["ELM_TLS_NAME"] == "evaluator"
            [certs] = [m for m in c["volumeMounts"] if m["mountPath"] == env["ELM_TLS_DIR"]]
            [secret] = [v["secret"] for v in spec["volumes"] if v["name"] == certs["name"]]
            assert certs["readOnly"] and secret["secretName"] == "elm-tls-evaluator"
            assert sorted(i["path"] for i in secret["items"]) == ["ca.pem", "evaluator.key", "evaluator.pem"]
            scratch = {m["name"] for m in c["volumeMounts"] if m["mountPath"] == "/tmp"}
            [volume] = [v for v in spec["volumes"] if v["name"] in scratch]
            assert volume["emptyDir"]["medium"] == "Memory" and volume["emptyDir"]["sizeLimit"]


def cpu(quantity: str | int) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_gi(quantity: str | int) -> float:
    text = str(quantity)
    units = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1.0, "Ti": 2**10}
    for unit, scale in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text) / 2**30


@overlays
def test_every_container_states_requests_and_limits(overlay: str) -> None:
    for obj, spec in workloads(list(render(overlay))):
        for c in containers(spec):
            where = f"{obj['metadata']['name']}/{c['name']}"
            requests, limits = c["resources"]["requests"], c["resources"]["limits"]
            assert {"cpu", "memory"} <= set(requests) and {"cpu", "memory"} <= set(limits), where
            assert cpu(requests["cpu"]) <= cpu(limits["cpu"]), where
            assert memory_gi(requests["memory"]) <= memory_gi(limits["memory"]), where


def pod_limits(spec: dict, resource: str, parse) -> float:  # noqa: ANN001
    """What a pod counts against a quota: the larger of its biggest init container and its containers' sum."""
    init = [parse(c["resources"]["limits"][resource]) for c in spec.get("initContainers", [])]
    return max([*init, sum(parse(c["resources"]["limits"][resource]) for c in spec["containers"])])


@overlays
def test_the_fleet_at_its_autoscaling_maximum_fits_the_quota(overlay: str) -> None:
    objects = render(overlay)
    hard = named(objects, "ResourceQuota", NAMESPACE)["spec"]["hard"]
    hpa = named(objects, "HorizontalPodAutoscaler", "evaluator")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "evaluator",
    }
    replicas = {obj["metadata"]["name"]: 1 for obj, _ in workloads(list(objects))}
    replicas["evaluator"] = hpa["spec"]["maxReplicas"]
    specs = {obj["metadata"]["name"]: spec for obj, spec in workloads(list(objects))}
    total_cpu = sum(replicas[n] * pod_limits(s, "cpu", cpu) for n, s in specs.items())
    total_memory = sum(replicas[n] * pod_limits(s, "memory", memory_gi) for n, s in specs.items())
    assert total_cpu <= cpu(hard["limits.cpu"]) and total_memory <= memory_gi(hard["limits.memory"])
    assert sum(replicas.values()) <= int(hard["pods"])
    assert of_kind(objects, "LimitRange"), "containers without resources would get none"


@overlays
def test_the_disruption_budget_and_autoscaler_cover_the_evaluators(overlay: str) -> None:
    objects = render(overlay)
    pdb = named(objects, "PodDisruptionBudget", "evaluator")
    deployment = named(objects, "Deployment", "evaluator")
    assert selects(pdb["spec"]["selector"], pod_labels(deployment))
    hpa = named(objects, "HorizontalPodAutoscaler", "evaluator")
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@overlays
def test_images_name_a_registry_and_a_pinned_tag(overlay: str) -> None:
    for _, spec in workloads(list(render(overlay))):
        for c in containers(spec):
            image = c["image"]
            repository, _, tag = image.rpartition(":")
            registry = repository.split("/")[0] if "/" in repository else ""
            assert "." in registry or ":" in registry or registry == "localhost", f"{image}: no registry"
            assert tag and tag != "latest" and "/" not in tag, image


@overlays
def test_the_coordinators_evaluator_address_is_the_headless_service(overlay: str) -> None:
    objects = render(overlay)
    coordinator = named(objects, "StatefulSet", "coordinator")
    env = {e["name"]: e.get("value") for e in coordinator["spec"]["template"]["spec"]["containers"][0]["env"]}
    host, port = env["ELM_EVALUATORS"].rsplit(":", 1)
    service = named(objects, "Service", host)  # a name in the coordinator's namespace
    assert service["spec"]["clusterIP"] == "None", "not headless: one virtual IP would hide the replicas"
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    evaluator = named(objects, "Deployment", "evaluator")
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(evaluator))
    target = next(p["targetPort"] for p in service["spec"]["ports"] if p["port"] == int(port))
    ports = evaluator["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert target in {p["name"] for p in ports} | {p["containerPort"] for p in ports}


# ---- what the NetworkPolicies let through ---------------------------------------------------------------


def endpoints(objects: tuple[dict, ...]) -> dict[str, Endpoint]:
    """Every pod the manifests make, plus the others a cluster has: DNS, a client pod, pods of another
    namespace and of a monitoring namespace, an address outside the cluster and one inside it."""
    namespace_labels = {**named(objects, "Namespace", NAMESPACE)["metadata"]["labels"],
                        "kubernetes.io/metadata.name": NAMESPACE}  # fmt: skip
    pods = {
        obj["metadata"]["name"]: Endpoint(
            obj["metadata"]["name"], NAMESPACE, pod_labels(obj), namespace_labels
        )
        for obj, _ in workloads(list(objects))
    }
    system = {"kubernetes.io/metadata.name": "kube-system"}
    return {
        **pods,
        "kube-dns": Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, system),
        "client": Endpoint("client", NAMESPACE, {"elm.io/client": "true"}, namespace_labels),
        "other-namespace": Endpoint(
            "other",
            "other",
            {"app.kubernetes.io/component": "coordinator"},
            {"kubernetes.io/metadata.name": "other"},
        ),  # fmt: skip
        "monitoring": Endpoint(
            "prometheus",
            "monitoring",
            {"app": "prometheus"},
            {"kubernetes.io/metadata.name": "monitoring", "elm.io/monitoring": "true"},
        ),  # fmt: skip
        "internet": Endpoint("internet", ip="203.0.113.7"),
        "cluster-address": Endpoint("cluster-address", ip="10.96.0.10"),
    }


def policies(objects: tuple[dict, ...]) -> list[dict]:
    found = of_kind(objects, "NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
               for p in found), "no default deny"  # fmt: skip
    return found


@overlays
def test_only_the_coordinator_reaches_the_evaluators_grpc_port(overlay: str) -> None:
    objects = render(overlay)
    rules, everyone = policies(objects), endpoints(objects)
    reach = {name for name, source in everyone.items() if name != "evaluator"
             and connection_allowed(rules, source, everyone["evaluator"], 50052)}  # fmt: skip
    assert reach == {"coordinator"}


@overlays
def test_evaluators_reach_nothing(overlay: str) -> None:
    objects = render(overlay)
    rules, everyone = policies(objects), endpoints(objects)
    evaluator = everyone["evaluator"]
    for name, destination in everyone.items():
        for port, protocol in ((53, "UDP"), (53, "TCP"), (443, "TCP"), (50051, "TCP"), (50053, "TCP")):
            assert not connection_allowed(rules, evaluator, destination, port, protocol), (name, port)


@overlays
def test_the_other_parts_reach_only_what_they_need(overlay: str) -> None:
    objects = render(overlay)
    rules, e = policies(objects), endpoints(objects)
    allowed = functools.partial(connection_allowed, rules)
    assert allowed(e["client"], e["coordinator"], 50051)
    assert not allowed(e["other-namespace"], e["coordinator"], 50051)
    assert allowed(e["coordinator"], e["model-server"], 50053)
    assert allowed(e["coordinator"], e["kube-dns"], 53, "UDP")
    assert not allowed(e["coordinator"], e["internet"], 443)
    assert not allowed(e["model-server"], e["evaluator"], 50052)
    assert allowed(e["model-server"], e["internet"], 443)  # the model download
    assert not allowed(e["model-server"], e["cluster-address"], 443)
    assert not allowed(e["model-server"], e["internet"], 80)
    for name in ("coordinator", "model-server", "evaluator", "kube-dns", "internet"):
        assert not allowed(e["finetune"], e[name], 53 if name == "kube-dns" else 443), name
    assert allowed(e["monitoring"], e["evaluator"], 51052) and not allowed(
        e["monitoring"], e["evaluator"], 50052
    )


# ---- the overlays ---------------------------------------------------------------------------------------


def test_dev_runs_one_replica_of_everything_on_single_node_volumes() -> None:
    objects = render("overlays/dev")
    for obj, _ in workloads(list(objects)):
        assert obj["spec"].get("replicas", 1) == 1, obj["metadata"]["name"]
    assert named(objects, "HorizontalPodAutoscaler", "evaluator")["spec"]["minReplicas"] == 1
    for claim in of_kind(objects, "PersistentVolumeClaim"):
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_gpu_gives_the_model_server_and_the_finetune_job_a_gpu() -> None:
    objects = render("overlays/gpu")
    for obj, spec in workloads(list(objects)):
        gpus = [c["resources"]["limits"].get("nvidia.com/gpu") for c in spec["containers"]]
        expected = 1 if obj["metadata"]["name"] in ("model-server", "finetune") else None
        assert gpus == [expected], obj["metadata"]["name"]
        if expected:
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
                "tolerations"
            ]
            assert spec["containers"][0]["image"].endswith("-cuda")


def test_gvisor_runs_the_evaluators_and_only_them_under_runsc() -> None:
    objects = render("overlays/gvisor")
    assert named(objects, "RuntimeClass", "gvisor")["handler"] == "runsc"
    for obj, spec in workloads(list(objects)):
        is_evaluator = selects({"matchLabels": EVALUATOR}, pod_labels(obj))
        assert spec.get("runtimeClassName") == ("gvisor" if is_evaluator else None), obj["metadata"]["name"]


# ---- the optional dashboard component -------------------------------------------------------------------

with_dashboard = pytest.mark.parametrize("overlay", WITH_DASHBOARD)


def dashboard(objects: tuple[dict, ...]) -> tuple[dict, dict, dict]:
    """The dashboard's Deployment, its pod spec and its one container."""
    deployment = named(objects, "Deployment", "dashboard")
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    return deployment, spec, container


def argument(container: dict, flag: str) -> str:
    args = container["args"]
    return args[args.index(flag) + 1]


@pytest.mark.parametrize("overlay", ["base", "overlays/dev", "overlays/gpu", "overlays/gvisor"])
def test_the_dashboard_is_optional(overlay: str) -> None:
    for obj in render(overlay):
        assert "dashboard" not in obj["metadata"]["name"], obj["metadata"]["name"]


@with_dashboard
def test_the_dashboard_is_locked_down(overlay: str) -> None:
    objects = render(overlay)
    deployment, spec, c = dashboard(objects)
    assert selects(deployment["spec"]["selector"], pod_labels(deployment)) and selects(
        {"matchLabels": DASHBOARD}, pod_labels(deployment)
    )
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["metadata"]["labels"]["app.kubernetes.io/part-of"] == "elm"
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == pod["runAsGroup"] == 10001
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    ctx = c["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert not spec.get("hostNetwork") and not any(p.get("hostPort") for p in c["ports"])
    limits, requests = c["resources"]["limits"], c["resources"]["requests"]
    assert memory_gi(limits["memory"]) <= 1 and cpu(limits["cpu"]) <= 1
    assert {"cpu", "memory"} <= set(requests)
    scratch = {m["name"] for m in c["volumeMounts"] if m["mountPath"] == "/tmp"}
    [volume] = [v for v in spec["volumes"] if v["name"] in scratch]
    assert volume["emptyDir"]["medium"] == "Memory" and volume["emptyDir"]["sizeLimit"]
    # the image is the coordinator's, as the base names it
    coordinator = named(objects, "StatefulSet", "coordinator")["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == coordinator["image"]


@with_dashboard
def test_the_dashboard_serves_http_with_probes_on_healthz(overlay: str) -> None:
    _, _, c = dashboard(render(overlay))
    assert c["args"][0] == "dashboard"
    [port] = c["ports"]
    assert port == {"name": "http", "containerPort": int(argument(c, "--port"))}
    assert argument(c, "--host") == "0.0.0.0"  # the kubelet's probes come to the pod's address
    for probe in ("readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] in ("http", port["containerPort"]), probe
        # the dashboard checks the Host header; a probe sends the pod's address unless told otherwise
        assert {"name": "Host", "value": "localhost"} in get["httpHeaders"], probe
        assert "scheme" not in get or get["scheme"] == "HTTP"


@with_dashboard
def test_the_dashboard_calls_the_coordinator_with_its_own_certificate_and_token(overlay: str) -> None:
    objects = render(overlay)
    _, spec, c = dashboard(objects)
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["ELM_TLS_NAME"] == "dashboard"
    [certs] = [m for m in c["volumeMounts"] if m["mountPath"] == env["ELM_TLS_DIR"]]
    [secret] = [v["secret"] for v in spec["volumes"] if v["name"] == certs["name"]]
    assert certs["readOnly"] and secret["secretName"] == "elm-tls-dashboard"
    assert {i["key"]: i["path"] for i in secret["items"]} == {
        "ca.crt": "ca.pem", "tls.crt": "dashboard.pem", "tls.key": "dashboard.key"
    }  # fmt: skip
    # the token from a file of its own Secret, never in the environment
    assert "ELM_TOKEN" not in env and not any("valueFrom" in e for e in c["env"])
    token_file = Path(env["ELM_TOKEN_FILE"])
    [tokens] = [m for m in c["volumeMounts"] if Path(m["mountPath"]) == token_file.parent]
    [secret] = [v["secret"] for v in spec["volumes"] if v["name"] == tokens["name"]]
    assert tokens["readOnly"] and secret["secretName"] == "elm-dashboard-token"
    assert {i["key"]: i["path"] for i in secret["items"]} == {"admin.token": token_file.name}
    for volume in spec["volumes"]:
        if "secret" in volume:
            assert volume["secret"]["defaultMode"] & 0o007 == 0, volume["name"]  # not world-readable
    # the coordinator's address is its Service, whose port reaches the coordinator's API
    host, port = argument(c, "--coordinator").rsplit(":", 1)
    service = named(objects, "Service", host)
    coordinator = named(objects, "StatefulSet", "coordinator")
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(coordinator))
    [target] = [p["targetPort"] for p in service["spec"]["ports"] if p["port"] == int(port)]
    ports = coordinator["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert any(p["name"] == target and p["containerPort"] == 50051 for p in ports)


@with_dashboard
def test_the_dashboard_service_is_cluster_internal(overlay: str) -> None:
    objects = render(overlay)
    deployment, _, c = dashboard(objects)
    service = named(objects, "Service", "dashboard")
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert "externalIPs" not in service["spec"] and "loadBalancerIP" not in service["spec"]
    assert not any("nodePort" in p for p in service["spec"]["ports"])
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment))
    [port] = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in c["ports"]} | {p["containerPort"] for p in c["ports"]}
    assert not of_kind(objects, "Ingress")


@with_dashboard
def test_the_dashboard_reaches_only_the_coordinator_and_nothing_reaches_it(overlay: str) -> None:
    objects = render(overlay)
    rules, e = policies(objects), endpoints(objects)
    allowed = functools.partial(connection_allowed, rules)
    me = e["dashboard"]
    assert allowed(me, e["coordinator"], 50051)
    assert allowed(me, e["kube-dns"], 53, "UDP") and allowed(me, e["kube-dns"], 53, "TCP")
    for name, destination in e.items():
        for port in (50051, 50052, 50053, 50061, 51051, 443, 80):
            if (name, port) != ("coordinator", 50051):
                assert not allowed(me, destination, port), (name, port)
    # it has no login of its own: no pod, namespace or address reaches its port (port-forward connects
    # inside the pod, and the kubelet's probes come from the node)
    for name, source in e.items():
        if name != "dashboard":
            assert not allowed(source, me, 8080), name
    # and adding it changed nothing else: clients still reach the coordinator, strangers still do not
    assert allowed(e["client"], e["coordinator"], 50051)
    assert not allowed(e["other-namespace"], e["coordinator"], 50051)
    assert not allowed(e["other-namespace"], e["coordinator"], 8080)


def test_an_overlays_image_setting_moves_the_dashboards_image_with_the_coordinators() -> None:
    """What docs/deploy-kubernetes.md tells: the component in one's own overlay, the images set there."""
    moved = {"name": "localhost:5000/elm-coordinator", "newName": "registry.internal/elm/elm-coordinator",
             "newTag": "0.2.0"}  # fmt: skip
    objects = kustomize_overlay(["overlays/dev"], [DASHBOARD_COMPONENT], images=[moved])
    _, _, c = dashboard(objects)
    coordinator = named(objects, "StatefulSet", "coordinator")["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == coordinator["image"] == "registry.internal/elm/elm-coordinator:0.2.0"
