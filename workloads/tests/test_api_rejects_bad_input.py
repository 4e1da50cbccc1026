"""Bad input to the API: 422 naming the field, and nothing reaches the stream."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]

BAD = [
    ({"payload": {}}, ["body", "task"]),
    ({"task": "Upper Case"}, ["body", "task"]),
    ({"task": "x" * 65}, ["body", "task"]),
    ({"task": "ok", "payload": [1, 2]}, ["body", "payload"]),
    ({"task": "ok", "payload": {"blob": "x" * 70_000}}, ["body", "payload"]),
    ({"task": "ok", "priority": 1}, ["body", "priority"]),
]


def test_invalid_jobs_get_422_naming_the_field_and_are_not_enqueued(standalone_backend, workloads):
    _, url = workloads.api()
    with httpx.Client(base_url=url, timeout=10) as client:
        for body, location in BAD:
            response = client.post("/v1/jobs", json=body)
            assert response.status_code == 422, body
            assert [error["loc"] for error in response.json()["detail"]] == [location], body
        broken = client.post(
            "/v1/jobs", content=b'{"task": ', headers={"content-type": "application/json"}
        )
        assert broken.status_code == 422
        huge = client.post("/v1/jobs", content=b"{" + b" " * 300_000 + b"}")
        assert huge.status_code == 413
        assert client.get("/v1/jobs/not-a-uuid").json()["detail"][0]["loc"] == ["path", "job_id"]
    assert workloads.redis().xlen(workloads.stream) == 0
