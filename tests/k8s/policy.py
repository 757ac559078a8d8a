"""What the rendered manifests mean, read the way Kubernetes reads them: label selectors, the Pod Security
Standards' restricted profile, and NetworkPolicy (which connection a set of policies lets through)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
# Pod Security Standards, restricted: the volume types a pod may use
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}  # fmt: skip


def pod_spec(obj: dict) -> dict | None:
    """The pod spec of a workload (a CronJob's through its job template), else None."""
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind not in WORKLOADS:
        return None
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def pod_labels(obj: dict) -> dict[str, str]:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return spec["template"]["metadata"].get("labels", {})


def workloads(objects: list[dict]) -> Iterator[tuple[dict, dict]]:
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            yield obj, spec


def containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def selects(selector: dict | None, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions); an empty one selects everything."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


def restricted_violations(spec: dict) -> list[str]:
    """Where a pod spec breaks the Pod Security Standards' restricted profile."""
    problems = []
    pod = spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(key)
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds)}")
    for c in containers(spec):
        ctx, name = c.get("securityContext", {}), c["name"]
        if ctx.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot")
        if ctx.get("runAsUser", pod.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser 0")
        if ctx.get("privileged"):
            problems.append(f"{name}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation")
        caps = ctx.get("capabilities", {})
        if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: capabilities")
        seccomp = ctx.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile {seccomp}")
        if c.get("ports") and any(p.get("hostPort") for p in c["ports"]):
            problems.append(f"{name}: hostPort")
    return problems


# ---- NetworkPolicy --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace, labels, its namespace's labels) or an address outside any pod (`ip` only)."""

    name: str
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    namespace_labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def _peer_matches(peer: dict, endpoint: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        if endpoint.ip is None:
            return False
        address = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if not endpoint.is_pod:
        return False
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], endpoint.namespace_labels)
    else:
        in_namespace = endpoint.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector", {}), endpoint.labels)


def _port_matches(ports: list[dict] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in ports)


def _side_allows(policies: list[dict], direction: str, owner: Endpoint, other: Endpoint, port: int,
                 protocol: str) -> bool:  # fmt: skip
    """Whether the policies selecting `owner` let this connection through on `owner`'s side."""
    if not owner.is_pod:
        return True
    selecting = [
        p for p in policies
        if p["metadata"]["namespace"] == owner.namespace
        and selects(p["spec"]["podSelector"], owner.labels)
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]  # fmt: skip
    if not selecting:
        return True  # no policy isolates this pod in this direction
    rules, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(rules, []):
            matched = not rule.get(peers) or any(
                _peer_matches(peer, other, policy["metadata"]["namespace"]) for peer in rule[peers]
            )
            if matched and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def connection_allowed(policies: list[dict], source: Endpoint, destination: Endpoint, port: int,
                       protocol: str = "TCP") -> bool:  # fmt: skip
    """A connection goes through only if the source's egress and the destination's ingress both allow it."""
    return _side_allows(policies, "Egress", source, destination, port, protocol) and _side_allows(
        policies, "Ingress", destination, source, port, protocol
    )
