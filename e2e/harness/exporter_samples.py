"""What an exporter serves, as samples, and samples as promtool's input series.

For the alert tests that record a real exporter's figures during a run and replay
them, one scrape a minute, through ``promtool test rules``.
"""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""One scrape: (series name, sorted labels) -> value."""


def scrape(port: int, host: str = "127.0.0.1") -> Samples:
    """GET ``/metrics`` of the exporter on ``host:port`` and parse every sample."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def input_series(name: str, labels: dict[str, str], values: list[float]) -> dict[str, str]:
    """One of promtool's ``input_series``: the values in order, one per interval."""
    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{body}}}", "values": " ".join(f"{v:.0f}" for v in values)}
