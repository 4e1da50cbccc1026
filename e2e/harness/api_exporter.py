"""A stand-in for a stack's API pod: the contract's latency histogram, observed steadily.

The autoscaling tests of the KWOK tier have no kubelet, so no API container
serves /metrics there; an :class:`ApiExporter` serves the histogram the real
API exports (``retention_contract.METRIC_API_REQUEST_DURATION``, the same
buckets, with the ``namespace`` and ``stack`` labels) on loopback.
Every observation takes ``seconds``; ``per_second`` of them are made each
second, in ten batches, until :meth:`close`.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Histogram, start_http_server

import retention_contract as contract
from harness.procs import free_port

# API latency buckets of the workloads (retention_workloads.metrics), fine around 200 ms.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)


class ApiExporter:
    """Serves the API latency histogram on 127.0.0.1:``port`` (a free port when 0)."""

    def __init__(
        self,
        *,
        namespace: str,
        stack: str,
        seconds: float,
        per_second: float,
        port: int = 0,
    ) -> None:
        self.registry = CollectorRegistry()
        names = [contract.LABEL_NAMESPACE, contract.LABEL_STACK, "route", "method", "status"]
        values = [namespace, stack, "/v1/jobs", "POST", "202"]
        self.histogram = Histogram(
            contract.METRIC_API_REQUEST_DURATION,
            "Time from the first byte of a request to the end of its response.",
            names,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.child = self.histogram.labels(*values)
        self.seconds = seconds
        self.per_second = per_second
        self.port = port or free_port()
        self._stop = threading.Event()
        self._server, self._thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )
        self._observer = threading.Thread(target=self._observe, daemon=True)
        self._observer.start()

    def _observe(self) -> None:
        # Ten batches a second; bounded by the stop event set by close().
        while not self._stop.wait(0.1):
            for _ in range(max(1, round(self.per_second / 10))):
                self.child.observe(self.seconds)

    def close(self) -> None:
        self._stop.set()
        self._observer.join(timeout=2)
        self._server.shutdown()
        self._thread.join(timeout=2)
