"""Certificates and keys for the local control plane.

One CA signs the API server's serving certificate and every client
certificate; the service-account key pair signs tokens. Everything is written
as PEM files into one directory and lives only as long as the test run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files :func:`create` wrote."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _leaf(
    *,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    subject: x509.Name,
    usage: x509.ObjectIdentifier | list[x509.ObjectIdentifier],
    sans: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    usages = usage if isinstance(usage, list) else [usage]
    builder = _builder(subject, ca_name, key.public_key()).add_extension(
        x509.ExtendedKeyUsage(usages), critical=False
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def create(directory: Path, *, server_ips: tuple[str, ...] = ("10.0.0.1",)) -> Pki:
    """Create the CA, serving, admin and service-account material in ``directory``.

    ``server_ips`` go into the API server's serving certificate beside
    127.0.0.1: where else it listens, and the ``kubernetes`` Service's ClusterIP.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _ca("retention-stack-local-ca")
    ca_name = ca_cert.subject
    sans: list[x509.GeneralName] = [
        x509.DNSName(name)
        for name in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
    ]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", *server_ips)]
    serving, serving_key = _leaf(
        ca_key=ca_key,
        ca_name=ca_name,
        subject=_name("kube-apiserver"),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=sans,
    )
    admin, admin_key = _leaf(
        ca_key=ca_key,
        ca_name=ca_name,
        subject=_name("retention-admin", "system:masters"),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    # Service-account tokens are signed with RSA, which every client verifies.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki = load(directory)
    pem = serialization.Encoding.PEM
    pki.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    _write_key(pki.ca_key, ca_key)
    pki.serving_cert.write_bytes(serving.public_bytes(pem))
    _write_key(pki.serving_key, serving_key)
    pki.admin_cert.write_bytes(admin.public_bytes(pem))
    _write_key(pki.admin_key, admin_key)
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


@dataclass(frozen=True)
class ServerTls:
    """A CA and a server certificate it signed, as PEM files (for a TLS-serving PostgreSQL)."""

    ca_cert: Path
    cert: Path
    key: Path


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = _name(common_name)
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def create_server_tls(directory: Path, *, hosts: list[str], ca_name: str) -> ServerTls:
    """Make a CA named ``ca_name`` and a server certificate for exactly ``hosts``.

    ``hosts`` are DNS names or IP addresses (the certificate's SANs); a client
    in verify-full refuses any other name. Files: ``ca.crt``, ``server.crt``,
    ``server.key`` (0600) in ``directory``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _ca(ca_name)
    server, server_key = _leaf(
        ca_key=ca_key,
        ca_name=ca_cert.subject,
        subject=_name(hosts[0]),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=[_general_name(host) for host in hosts],
    )
    tls = ServerTls(
        ca_cert=directory / "ca.crt", cert=directory / "server.crt", key=directory / "server.key"
    )
    pem = serialization.Encoding.PEM
    tls.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    tls.cert.write_bytes(server.public_bytes(pem))
    _write_key(tls.key, server_key)
    return tls


FRONT_PROXY_CLIENT = "front-proxy-client"
"""Common name of the aggregation layer's proxy client certificate
(``--requestheader-allowed-names``: the only name an extension API server believes)."""


@dataclass(frozen=True)
class FrontProxy:
    """The aggregation layer's material: a CA of its own and the client certificate it signed,
    with which kube-apiserver proxies requests to extension API servers."""

    ca_cert: Path
    cert: Path
    key: Path


def create_front_proxy(directory: Path) -> FrontProxy:
    """Make the front-proxy CA and the API server's proxy client certificate in ``directory``.

    A CA apart from the cluster's: extension API servers (metrics-server, KEDA's
    metrics API server) trust the user names in request headers only from a
    client certificate of this CA named :data:`FRONT_PROXY_CLIENT`, so no
    ordinary client certificate of the cluster CA can claim to be another user.
    Files: ``front-proxy-ca.crt``, ``front-proxy-client.crt``, ``front-proxy-client.key``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _ca("retention-stack-front-proxy-ca")
    client, client_key = _leaf(
        ca_key=ca_key,
        ca_name=ca_cert.subject,
        subject=_name(FRONT_PROXY_CLIENT),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    proxy = FrontProxy(
        ca_cert=directory / "front-proxy-ca.crt",
        cert=directory / f"{FRONT_PROXY_CLIENT}.crt",
        key=directory / f"{FRONT_PROXY_CLIENT}.key",
    )
    pem = serialization.Encoding.PEM
    proxy.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    proxy.cert.write_bytes(client.public_bytes(pem))
    _write_key(proxy.key, client_key)
    return proxy


@dataclass(frozen=True)
class Leaf:
    """Paths of a certificate and its key signed by the local CA."""

    cert: Path
    key: Path


def issue(
    pki: Pki,
    name: str,
    *,
    common_name: str,
    organization: str | None = None,
    server: bool = False,
    client_too: bool = False,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
) -> Leaf:
    """Sign a client (or, with ``server``, serving) certificate with the CA of ``pki``.

    ``server`` and ``client_too``: one pair that serves and authenticates, as a
    mutual-TLS peer that dials its twin with its own certificate needs.

    Written as ``<name>.crt`` and ``<name>.key`` beside the CA. The kubelet's
    identity, for one, is ``common_name="system:node:<node>"`` with
    ``organization="system:nodes"``, which the Node authorizer recognises.
    """
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{pki.ca_key} is not the EC key create() writes")
    ca_name = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()).subject
    sans = [_general_name(host) for host in (*dns, *ips)]
    usage: list[x509.ObjectIdentifier] = [
        ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    if server and client_too:
        usage.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    cert, key = _leaf(
        ca_key=ca_key,
        ca_name=ca_name,
        subject=_name(common_name, organization),
        usage=usage,
        sans=sans or None,
    )
    leaf = Leaf(cert=pki.ca_cert.parent / f"{name}.crt", key=pki.ca_cert.parent / f"{name}.key")
    leaf.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(leaf.key, key)
    return leaf


def load(directory: Path) -> Pki:
    """Return the paths :func:`create` wrote into ``directory`` (not checked)."""
    return Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
    )
