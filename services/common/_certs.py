"""A local certificate authority for the services, and API tokens: what `elm certs` writes.

One directory per party, holding only what that party may see: `ca.pem`, its `<party>.pem` and
`<party>.key`; the coordinator's also holds `tokens.json` (token digests), the client's the tokens themselves
(`admin.token`, `read.token`), the dashboard's an admin token of its own (`admin.token`: its pause, resume and
stop buttons need the admin role; named `dashboard` in `tokens.json`, so the coordinator's log tells its calls
apart and the token can be revoked alone). The dashboard's certificate is a client's: no service but the
coordinator (which admits any certificate of the authority, then asks for a token) accepts it. The
authority's key is not kept: running it again makes a new authority.
For compose and tests; a cluster takes its certificates from cert-manager (docs/deploy-kubernetes.md).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common._security import ADMIN, READ, token_digest

PARTIES = ("coordinator", "evaluator", "model-server", "trainer", "client", "dashboard")
TOKENS_FILE = "tokens.json"
_LOOPBACK_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


def write_certificates(out: Path, *, hosts: Sequence[str] = (), days: int = 825) -> None:
    """A new authority and a certificate for each party in `out/<party>/`, valid for the party's name,
    localhost, the loopback addresses and `hosts`; plus an admin and a read token for the client, and an
    admin token for the dashboard."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elm local certificate authority")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .sign(ca_key, hashes.SHA256())
    )
    for party in PARTIES:
        (out / party).mkdir(parents=True, exist_ok=True)
        _write(out / party / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName(n) for n in dict.fromkeys([party, "localhost", *hosts])]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party)])
        cert = (
            _builder(subject, ca_name, key.public_key(), days)
            .add_extension(
                x509.SubjectAlternativeName([*names, *map(x509.IPAddress, _LOOPBACK_IPS)]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )  # fmt: skip
            .sign(ca_key, hashes.SHA256())
        )
        _write(out / party / f"{party}.pem", cert.public_bytes(serialization.Encoding.PEM))
        _write(out / party / f"{party}.key", _pem_key(key), private=True)
    tokens = {role: secrets.token_urlsafe(32) for role in (ADMIN, READ)}
    for role, token in tokens.items():
        _write(out / "client" / f"{role}.token", (token + "\n").encode(), private=True)
    entries = [{"name": role, "role": role, "sha256": token_digest(token)} for role, token in tokens.items()]
    dashboard = secrets.token_urlsafe(32)
    _write(out / "dashboard" / f"{ADMIN}.token", (dashboard + "\n").encode(), private=True)
    entries.append({"name": "dashboard", "role": ADMIN, "sha256": token_digest(dashboard)})
    _write(out / "coordinator" / TOKENS_FILE, (json.dumps({"tokens": entries}, indent=2) + "\n").encode())


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Writes through a new file, readable by its owner only when `private`."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(partial, path)
