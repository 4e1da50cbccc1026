"""How the operator itself reaches PostgreSQL: the CA, the TLS context, the TLS handshake.

The preflight (:mod:`.preflight`) and the read pool's lag monitor
(:mod:`retention_operator.readpool`) connect the way PgBouncer will, with the
sslmode of :func:`retention_operator.builders.database.server_sslmode` and the
CA of ``spec.pgbouncer.tls.ca``. The CA certificate is public data and is read
from its Secret or ConfigMap; no password is read here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import ssl
import struct
from dataclasses import dataclass

from retention_operator.kube import KubeClient
from retention_operator.model import RetentionStack, SslMode

REASON_CA_NOT_FOUND = "DatabaseCANotFound"
REASON_TLS_REFUSED = "DatabaseTLSRefused"
REASON_CERTIFICATE_UNTRUSTED = "DatabaseCertificateUntrusted"
REASON_HOST_MISMATCH = "DatabaseHostMismatch"
REASON_TLS_FAILED = "DatabaseTLSFailed"

# PostgreSQL's SSLRequest: length 8, then the request code 1234.5679.
_SSL_REQUEST = struct.pack("!II", 8, 80877103)
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH_CODES = frozenset({62, 64})


@dataclass(frozen=True)
class TlsFailure:
    """Why a TLS connection to a database server failed; ``reason`` is an Event reason."""

    reason: str
    message: str


async def ca_bundle(kube: KubeClient, stack: RetentionStack) -> str | TlsFailure | None:
    """Return the PEM text of ``spec.pgbouncer.tls.ca``, None when no CA is set.

    Returns a :class:`TlsFailure` (``DatabaseCANotFound``) naming the object
    and key when the Secret or ConfigMap, or its key, is missing.
    """
    ca = stack.spec.pgbouncer.tls.ca
    if ca is None:
        return None
    ref = ca.selector
    kind = "Secret" if ca.secret_key_ref is not None else "ConfigMap"
    where = f"{kind} {stack.namespace}/{ref.name}"
    live = await kube.get("v1", kind, stack.namespace, ref.name, child=False)
    if live is None:
        return TlsFailure(
            REASON_CA_NOT_FOUND, f"{where} named by spec.pgbouncer.tls.ca does not exist"
        )
    raw = (live.get("data") or {}).get(ref.key)
    if raw is None:
        return TlsFailure(
            REASON_CA_NOT_FOUND, f"{where} named by spec.pgbouncer.tls.ca has no key {ref.key!r}"
        )
    if kind == "ConfigMap":
        return str(raw)
    try:
        return base64.b64decode(raw).decode()
    except (binascii.Error, UnicodeDecodeError):
        return TlsFailure(REASON_CA_NOT_FOUND, f"{where} key {ref.key!r} is not a PEM certificate")


@functools.lru_cache(maxsize=64)
def ssl_context(mode: SslMode, ca_pem: str | None) -> ssl.SSLContext | None:
    """Return the client TLS context of ``mode`` (None for disable, allow and prefer).

    require encrypts without verifying (as libpq does without a root
    certificate); verify-ca checks the chain against ``ca_pem``; verify-full
    also checks that the certificate names the host.

    Built once per (mode, CA) and shared, so callers must not change it: the
    preflight of every reconcile asks for one, and loading the system's CA
    bundle was most of the operator's CPU at a hundred stacks (py-spy).
    """
    if mode in ("disable", "allow", "prefer"):
        return None
    if mode == "require":
        # Nothing is verified, so no CA is loaded.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    context.check_hostname = mode == "verify-full"
    return context


def asyncpg_ssl(mode: SslMode, ca_pem: str | None) -> ssl.SSLContext | str | bool:
    """Return asyncpg's ``ssl`` argument for ``mode``: a context, a mode name, or False."""
    if mode == "disable":
        return False
    return ssl_context(mode, ca_pem) or mode


async def tls_failure(
    host: str,
    port: int,
    *,
    mode: SslMode,
    ca_pem: str | None,
    what: str,
    within: float,
) -> TlsFailure | None:
    """Return None if ``host:port`` completes a PostgreSQL TLS handshake as ``mode`` asks.

    Only require, verify-ca and verify-full are checked (the other modes accept
    a server without TLS). ``what`` names the server in the message
    ("PostgreSQL at h:p (spec.pgbouncer.database)").
    """
    context = ssl_context(mode, ca_pem)
    if context is None:
        return None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
    except (OSError, TimeoutError) as exc:
        return TlsFailure(REASON_TLS_FAILED, f"{what} accepts no connection: {exc}")
    try:
        writer.write(_SSL_REQUEST)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readexactly(1), within)
        if answer != b"S":
            return TlsFailure(
                REASON_TLS_REFUSED,
                f"{what} does not serve TLS, and spec.pgbouncer.tls asks for sslmode {mode}",
            )
        await asyncio.wait_for(writer.start_tls(context, server_hostname=host), within)
    except ssl.SSLCertVerificationError as exc:
        return _verify_failure(exc, what=what, host=host, mode=mode)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
        return TlsFailure(REASON_TLS_FAILED, f"{what}: TLS handshake failed: {exc}")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    return None


def _verify_failure(
    exc: ssl.SSLCertVerificationError, *, what: str, host: str, mode: SslMode
) -> TlsFailure:
    detail = exc.verify_message or str(exc)
    if exc.verify_code in _NAME_MISMATCH_CODES:
        return TlsFailure(
            REASON_HOST_MISMATCH,
            f"{what} presented a certificate that is not valid for the host name {host!r} "
            f"(sslmode {mode}): {detail}",
        )
    return TlsFailure(
        REASON_CERTIFICATE_UNTRUSTED,
        f"{what} presented a certificate that the CA of spec.pgbouncer.tls.ca does not trust "
        f"(sslmode {mode}): {detail}",
    )
