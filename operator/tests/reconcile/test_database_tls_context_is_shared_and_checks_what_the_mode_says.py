"""The preflight's TLS contexts: one per sslmode and CA, each checking what its mode says."""

from __future__ import annotations

import ssl

from retention_operator.reconcile.database import ssl_context


def test_require_encrypts_without_verifying_and_loads_no_ca() -> None:
    context = ssl_context("require", None)
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname
    # Loading the system's CA bundle per reconcile was most of the operator's CPU.
    assert context.cert_store_stats()["x509_ca"] == 0


def test_verify_modes_check_the_chain_and_only_verify_full_the_host() -> None:
    verify_ca, verify_full = ssl_context("verify-ca", None), ssl_context("verify-full", None)
    assert verify_ca is not None and verify_full is not None
    assert verify_ca.verify_mode == verify_full.verify_mode == ssl.CERT_REQUIRED
    assert not verify_ca.check_hostname
    assert verify_full.check_hostname


def test_a_context_is_built_once_per_mode_and_ca() -> None:
    assert ssl_context("require", None) is ssl_context("require", None)
    assert ssl_context("verify-full", None) is not ssl_context("verify-ca", None)
    for mode in ("disable", "allow", "prefer"):
        assert ssl_context(mode, None) is None
