"""The loop's retention_stack_replicas series follows each decision, goes while the replica
stands by, and comes back when it leads again.

The loop looks each component's series up once and keeps it; a standby removes the
series (the alerts take the maximum over replicas, so a standby must not export what it
saw as a leader), and the kept one must then be looked up again, or the leader's
decisions would never be exported after a handover back. Fakes as in conftest.py.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from retention_operator.autoscaling.loop import AutoscalingLoop
from retention_operator.settings import Settings


def _replicas(component: str) -> float | None:
    labels = {"namespace": "shop", "stack": "standby", "component": component}
    return REGISTRY.get_sample_value("retention_stack_replicas", labels)


async def test_the_series_goes_on_standby_and_comes_back_when_leading(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    body = make_stack("standby")
    kube.add_stack(body, api=3, workers=1)
    settings = Settings(prometheus_url="http://127.0.0.1:9", tick_seconds=1.0)
    loop = AutoscalingLoop(kube=kube, settings=settings, reader=reader, clock=clock)
    loop.track(body)
    leading = True

    async def leads() -> bool:
        return leading

    loop._leadership.leads = leads  # type: ignore[method-assign]
    await loop.tick()
    assert (_replicas("api"), _replicas("workers")) == (3.0, 1.0)
    leading = False
    clock.advance(1)
    await loop.tick()
    assert (_replicas("api"), _replicas("workers")) == (None, None)
    leading = True
    reader.backlog["standby"] = 6000
    clock.advance(1)
    await loop.tick()
    assert _replicas("api") == 3.0
    assert _replicas("workers") == kube.replicas("shop", "standby-workers") > 1
