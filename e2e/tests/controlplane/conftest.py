"""Shared helpers for the control-plane tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config

from harness.controlplane import ControlPlane


@pytest.fixture
def api_client(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient with the admin kubeconfig."""
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    try:
        yield api
    finally:
        api.close()
