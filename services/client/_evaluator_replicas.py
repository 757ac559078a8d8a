"""The replicas behind an evaluator fleet's targets: discovery by DNS, in-flight accounting, cool-off.

Each target "host:port" may name several replicas (a scaled compose service, a headless Kubernetes
service): every address the name resolves to is probed with GetCapabilities, and addresses that answer
with the same replica name (127.0.0.1 and ::1 of one server) count once.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from elm_core.errors import BackendUnavailableError, ElmError
from protos.elm.v1 import evaluator_pb2, evaluator_pb2_grpc
from services.common import Caller, Credentials

Found = TypeVar("Found")

_PROBE_DEADLINE_S = 2.0
_MIN_RESOLVE_INTERVAL_S = 0.5  # re-resolving when nothing is usable, at most this often


@dataclass(eq=False)
class Replica:
    """One evaluator replica and what this client has in flight there."""

    address: str
    caller: Caller
    capabilities: evaluator_pb2.Capabilities
    calls: int = 0
    programs: int = 0
    down_until: float = 0.0
    stub: evaluator_pb2_grpc.EvaluatorServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.stub = evaluator_pb2_grpc.EvaluatorServiceStub(self.caller.channel)

    @property
    def name(self) -> str:
        return self.capabilities.replica or self.address


def resolve(target: str) -> list[str]:
    """Every address `host:port` resolves to, as gRPC targets ("10.0.0.5:50051", "[::1]:50051")."""
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    addresses = [f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"
                 for family, *_, (ip, *_) in infos]  # fmt: skip
    return list(dict.fromkeys(addresses))


@dataclass
class Patience:
    """How long a batch has gone without a sign that any replica works; give up after `give_up_s`."""

    give_up_s: float
    alive_at: float = field(default_factory=time.monotonic)

    def alive(self) -> None:
        self.alive_at = time.monotonic()

    @property
    def exhausted(self) -> bool:
        return time.monotonic() - self.alive_at >= self.give_up_s


class Replicas:
    """Thread-safe pool of the usable replicas; `acquire` hands out the least busy one within the limits."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        per_replica_in_flight: int,
        cool_off_s: float,
        resolve_every_s: float,
        credentials: Credentials,
    ) -> None:
        self.targets, self.credentials = list(targets), credentials
        self.per_replica_in_flight, self.cool_off_s = per_replica_in_flight, cool_off_s
        self.resolve_every_s = resolve_every_s
        self._replicas: list[Replica] = []
        self._aliases: set[str] = set()  # addresses that reach a replica already known by another address
        self._retired: list[Replica] = []
        self._turn = 0  # round robin among equally busy replicas
        self._resolved_at = -float("inf")
        self._changed = threading.Condition()
        self._resolving = threading.Lock()

    def usable(self, patience: Patience | None = None) -> list[Replica]:
        """The replicas not cooling off (re-resolved when due); with `patience`, waits for at least one."""
        if patience is not None:
            return self._wait_for(lambda now: self._usable(now) or None, 1, patience)
        with self._changed:
            due = self._resolve_due(time.monotonic())
        if due:
            self._refresh()
        with self._changed:
            return self._usable(time.monotonic())

    def acquire(self, programs: int, patience: Patience) -> Replica:
        """The least busy replica with room for one more call of `programs` programs; waits for one."""

        def take(now: float) -> Replica | None:
            replica = self._pick(programs, now)
            if replica is not None:
                replica.calls, replica.programs = replica.calls + 1, replica.programs + programs
            return replica

        return self._wait_for(take, programs, patience)

    def release(self, replica: Replica, programs: int, *, failed: bool = False) -> None:
        """Ends a call; a failed replica cools off before it gets work again."""
        with self._changed:
            replica.calls, replica.programs = replica.calls - 1, replica.programs - programs
            if failed:
                replica.down_until = time.monotonic() + self.cool_off_s
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            for replica in self._replicas + self._retired:
                replica.caller.close()
            self._replicas, self._retired = [], []

    def _wait_for(self, take: Callable[[float], Found | None], programs: int, patience: Patience) -> Found:
        """Waits until `take` finds something; usable replicas that could take `programs` keep patience."""
        with self._changed:
            while True:
                now = time.monotonic()
                found = take(now)
                if found is not None:
                    return found
                if any(programs <= r.capabilities.max_batch for r in self._usable(now)):
                    patience.alive()  # only busy: their calls end within their deadlines
                elif patience.exhausted:
                    raise BackendUnavailableError(
                        f"no evaluator replica of {self.targets} usable for {patience.give_up_s:g} s"
                    )
                if self._resolve_due(now) and self._refresh_unlocked():
                    continue
                self._changed.wait(_MIN_RESOLVE_INTERVAL_S)

    def _usable(self, now: float) -> list[Replica]:
        return [r for r in self._replicas if r.down_until <= now]

    def _pick(self, programs: int, now: float) -> Replica | None:
        fits = [
            r
            for r in self._usable(now)
            if r.calls < self.per_replica_in_flight and r.programs + programs <= r.capabilities.max_batch
        ]
        if not fits:
            return None
        self._turn += 1
        order = {id(r): i for i, r in enumerate(self._replicas)}
        count = len(self._replicas)
        return min(fits, key=lambda r: (r.calls, (order[id(r)] - self._turn) % count))

    def _resolve_due(self, now: float) -> bool:
        since = now - self._resolved_at
        return since >= self.resolve_every_s or (not self._usable(now) and since >= _MIN_RESOLVE_INTERVAL_S)

    def _refresh_unlocked(self) -> bool:
        """`_refresh` called while holding the lock: other threads go on while this one resolves."""
        self._changed.release()
        try:
            return self._refresh()
        finally:
            self._changed.acquire()

    def _refresh(self) -> bool:
        """Re-resolves the targets and probes new addresses; False when another thread is already at it."""
        if not self._resolving.acquire(blocking=False):
            return False
        try:
            # every address, with the host name its certificate is checked against
            hosts = {a: _host(t) for t in self.targets for a in resolve(t)}
            addresses = list(hosts)
            with self._changed:
                known = {r.address for r in self._replicas} | self._aliases
            fresh = [a for a in addresses if a not in known]
            probed = [p for p in (_probe(a, self._credentials(hosts[a])) for a in fresh) if p is not None]
            with self._changed:
                self._update(addresses, probed)
            return True
        finally:
            self._resolving.release()

    def _credentials(self, host: str | None) -> Credentials:
        return self.credentials if host is None else self.credentials.for_server(host)

    def _update(self, addresses: list[str], probed: list[Replica]) -> None:
        """Keeps the replicas still resolved, adds the new ones, closes the gone ones once idle."""
        current = set(addresses)
        self._retired += [r for r in self._replicas if r.address not in current]
        self._replicas = [r for r in self._replicas if r.address in current]
        self._aliases &= current
        for replica in probed:
            if replica.capabilities.replica and replica.name in {r.name for r in self._replicas}:
                self._aliases.add(replica.address)
                replica.caller.close()
            else:
                self._replicas.append(replica)
        for replica in [r for r in self._retired if r.calls == 0]:
            replica.caller.close()
            self._retired.remove(replica)
        self._resolved_at = time.monotonic()
        self._changed.notify_all()


def _host(target: str) -> str | None:
    """The target's host name, which replicas found behind it are verified against; None for an IP."""
    host = target.rpartition(":")[0].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def _probe(address: str, credentials: Credentials) -> Replica | None:
    """The replica at `address` with its capabilities, or None when it does not answer (yet)."""
    caller = Caller(address, deadline_s=_PROBE_DEADLINE_S, credentials=credentials)
    stub = evaluator_pb2_grpc.EvaluatorServiceStub(caller.channel)
    try:
        capabilities = caller.call(stub.GetCapabilities, evaluator_pb2.GetCapabilitiesRequest(), retry=False)
    except ElmError:
        caller.close()
        return None
    return Replica(address, caller, capabilities)
