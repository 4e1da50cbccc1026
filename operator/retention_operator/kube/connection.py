"""Where the API server is and how to authenticate to it.

Reads ``KUBECONFIG`` (or ``~/.kube/config``) through the kubernetes client's
own loader, so every kubeconfig form it understands (embedded or file
certificates, tokens, exec plugins) works; falls back to the in-cluster
service-account token when no kubeconfig is present.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Connection:
    """A resolved API server address with TLS and credentials."""

    host: str
    ssl_context: ssl.SSLContext
    token_path: Path | None = None
    token: str | None = None

    def headers(self) -> dict[str, str]:
        """Return the Authorization header, re-reading a projected token file each time."""
        if self.token_path is not None:
            return {"Authorization": f"Bearer {self.token_path.read_text().strip()}"}
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {}


def _from_configuration(cfg: k8s_client.Configuration) -> Connection:
    ctx = (
        ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.ssl_ca_cert
        else ssl.create_default_context()
    )
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file and cfg.key_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    # The client keeps a kubeconfig token under "BearerToken" (older versions:
    # "authorization"); auth_settings() knows both and adds the "Bearer" prefix.
    bearer = cfg.auth_settings().get("BearerToken", {}).get("value")
    token = str(bearer).removeprefix("Bearer ").strip() if bearer else None
    return Connection(host=str(cfg.host).rstrip("/"), ssl_context=ctx, token=token)


def load_connection(kubeconfig: str | None = None) -> Connection:
    """Return the connection from ``kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config`` or in-cluster.

    Raises ``kubernetes.config.ConfigException`` when none of them is usable.
    """
    path = kubeconfig or os.environ.get("KUBECONFIG")
    default = Path.home() / ".kube" / "config"
    if path or default.exists():
        cfg = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=path, client_configuration=cfg)  # type: ignore[no-untyped-call]
        return _from_configuration(cfg)
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise k8s_config.ConfigException("no kubeconfig and not running in a cluster")
    ctx = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT_DIR / "ca.crt"))
    return Connection(
        host=f"https://{host}:{port}", ssl_context=ctx, token_path=SERVICE_ACCOUNT_DIR / "token"
    )
