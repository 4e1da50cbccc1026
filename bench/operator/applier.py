"""One apply of many objects, as both sides of the benchmark send it: 32 at a time.

``kubectl apply -f`` sends one object after another: at a thousand stacks
(nine thousand children for the floor) that alone took most of a run on this
machine, and it would time kubectl, not the control plane or the operator. A
careful user with that many objects applies them concurrently; both sides get
the same client, the same concurrency (the operator's own limit on requests in
flight) and the same server-side apply, so the ratio compares what follows.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any

import httpx

from harness.controlplane import ControlPlane
from retention_operator.kube.resources import resource

CONCURRENCY = 32
FIELD_MANAGER = "bench"
ATTEMPTS = 5


def _context(cp: ControlPlane) -> ssl.SSLContext:
    pki = cp.run_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


async def _apply_all(cp: ControlPlane, items: list[dict[str, Any]]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(verify=_context(cp), timeout=60, limits=limits) as http:

        async def one(item: dict[str, Any]) -> None:
            meta = item["metadata"]
            path = resource(item["apiVersion"], item["kind"]).item(meta["namespace"], meta["name"])
            async with gate:
                for attempt in range(ATTEMPTS):
                    response = await http.patch(
                        cp.server + path,
                        params={"fieldManager": FIELD_MANAGER, "force": "true"},
                        content=json.dumps(item).encode(),
                        headers={"Content-Type": "application/apply-patch+yaml"},
                    )
                    # A busy API server says "later" (429, 5xx): as kubectl, try again.
                    if response.status_code < 429 or attempt == ATTEMPTS - 1:
                        break
                    await asyncio.sleep(1 + attempt)
                response.raise_for_status()

        await asyncio.gather(*(one(item) for item in items))


def apply_all(cp: ControlPlane, items: list[dict[str, Any]], *, timeout: float = 1800) -> float:
    """Server-side apply every item, CONCURRENCY at a time; return the seconds it took.

    Items must be namespaced kinds the operator knows (a Secret, the stacks,
    their children), in existing namespaces. Raises on any refusal.
    """
    began = time.monotonic()
    asyncio.run(asyncio.wait_for(_apply_all(cp, items), timeout))
    return time.monotonic() - began
