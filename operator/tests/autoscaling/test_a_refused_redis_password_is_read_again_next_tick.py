"""A Redis that refuses the cached password makes the next tick read the Secret again.

The loop keeps a password read from a Secret for SECRET_TTL_SECONDS (60 s). A stack
deleted and applied again gets a new managed Redis password under the same Secret name,
so a kept password would fail every read for up to a minute; a refusal drops it instead.
"""

from __future__ import annotations

import base64
from typing import Any

from retention_operator.autoscaling.loop import AutoscalingLoop

from .conftest import make_loop


def _secret(password: str) -> dict[str, Any]:
    return {"data": {"pw": base64.b64encode(password.encode()).decode()}}


def _passwords(reader: Any) -> list[set[str | None]]:
    return [{endpoint.password for endpoint in call} for call in reader.queue_calls]


def _loop_with_a_password(kube: Any, reader: Any, clock: Any, make_stack: Any) -> AutoscalingLoop:
    """A loop tracking stack "a", whose external Redis password is "old" in Secret cache/pw."""
    body = make_stack("a")
    body["spec"]["redis"]["external"]["passwordSecretRef"] = {"name": "cache", "key": "pw"}
    kube.add_stack(body)
    kube.secrets[("shop", "cache")] = _secret("old")
    loop = make_loop(kube, reader, clock)
    loop.track(body)
    return loop


async def test_the_secret_is_read_again_after_redis_refuses_its_password(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    loop = _loop_with_a_password(kube, reader, clock, make_stack)
    await loop.tick()
    # The Secret changes (the stack applied again); the next read is refused.
    kube.secrets[("shop", "cache")] = _secret("new")
    reader.refuse = {"old"}
    clock.advance(1.0)
    await loop.tick()
    clock.advance(1.0)
    await loop.tick()
    assert _passwords(reader) == [{"old"}, {"old"}, {"new"}]
    assert reader.refused_password == set()


async def test_a_password_that_is_accepted_is_kept_for_its_time_to_live(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    loop = _loop_with_a_password(kube, reader, clock, make_stack)
    await loop.tick()
    kube.secrets[("shop", "cache")] = _secret("new")
    clock.advance(1.0)
    await loop.tick()
    assert _passwords(reader) == [{"old"}, {"old"}]
