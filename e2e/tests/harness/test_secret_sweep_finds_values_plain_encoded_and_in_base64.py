"""The secret sweep's matcher finds a value however it was written, and nothing else."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from harness.leaks import find_leaks

SECRET = {"Secret ns/db key 'password'": "9f2c1e7ab44d0c55"}


@pytest.mark.parametrize(
    "written",
    [
        "connecting with password 9f2c1e7ab44d0c55",
        "redis://:" + quote("9f2c1e7ab44d0c55") + "@10.0.0.3:6379/0",
        base64.b64encode(b"9f2c1e7ab44d0c55").decode(),
        # Inside a longer encoded blob, at each of base64's three alignments.
        base64.b64encode(b"user:9f2c1e7ab44d0c55").decode(),
        base64.b64encode(b"ab9f2c1e7ab44d0c55xyz").decode(),
        base64.urlsafe_b64encode(b"k=9f2c1e7ab44d0c55").decode(),
        json.dumps({"status": {"message": "auth 9f2c1e7ab44d0c55 refused"}}),
    ],
)
def test_a_value_is_found_in_any_form(written: str) -> None:
    assert find_leaks(SECRET, [("Event ns/x", written)]) == [
        "Secret ns/db key 'password' in Event ns/x"
    ]


def test_names_of_secrets_and_short_values_are_not_leaks() -> None:
    secrets = {**SECRET, "Secret ns/flags key 'on'": "true"}
    written = [("Event ns/x", "Secret ns/db named by credentialsSecretRef is ready: true")]
    assert find_leaks(secrets, written) == []
