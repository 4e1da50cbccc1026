"""The PromQL that reads the API latency of stacks, and how its answer becomes readings.

Pure code; :mod:`.signals` sends the queries. A query is a frozen (hashable) object,
so the loop groups stacks by (Prometheus URL, query) and sends each query once a tick:

* :class:`HistogramSeries` reads one histogram for every stack that shares it (and the
  way its series are told apart), grouped by namespace and stack: the project's own
  ``retention_api_request_duration_seconds`` with its ``stack`` label, or any
  application's histogram by the labels Prometheus attaches when it scrapes a pod
  (``namespace``, ``pod``, or a pod label it copied);
* :class:`StackQuery` is the escape hatch of ``spec.api.autoscaling.latency.query``:
  PromQL templates rendered for one stack, one query per stack.

A :class:`HistogramSeries` query gives four vectors told apart by a ``signal`` label
(``p95`` in seconds, ``rps`` over the rate window, ``rps_recent`` between the last two
scrapes (``irate``: a surge shows a scrape after it starts, not a minute), and ``at``,
the time of the newest ``_count`` sample), joined with ``or``: their label sets differ
in ``signal``, so ``or`` keeps all of them. A :class:`StackQuery` gives ``p95`` and
``rps`` only (its reading has no ``rps_recent``, and the policy uses the mean rate).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import retention_contract as contract
from retention_operator import names
from retention_operator.autoscaling.samples import ApiSample

# Window of the PromQL rates: four scrapes at Prometheus's common 15 s interval.
RATE_WINDOW = "1m"
# The label a podName query puts the stack's name in (one no application uses).
STACK_FROM_POD = "retention_stack"
# A Deployment's pods are <deployment>-<pod-template-hash>-<suffix>; the API's Deployment
# is <stack>-api, and (.+) is greedy, so a stack named a-api-b is still found whole.
API_POD_REGEX = f"(.+)-{names.COMPONENT_API}-[a-z0-9]+-[a-z0-9]+"
PLACEHOLDER_NAMESPACE = "{{namespace}}"
PLACEHOLDER_NAME = "{{name}}"

StackKey = tuple[str, str]
"""(namespace, stack name)."""


@dataclass(frozen=True, slots=True)
class LatencyReading:
    """One reading of a stack's API: p95 in milliseconds, requests per second over the
    rate window and over the last scrape interval (``rps_recent``).

    ``at`` is the time of the newest scraped sample behind the values (so that
    staleness can be judged), or the time of the attempt when nothing was read.
    Values are None when unknown; ``error`` says why.
    """

    at: float
    p95_ms: float | None = None
    rps: float | None = None
    rps_recent: float | None = None
    error: str | None = None

    def sample(self) -> ApiSample:
        """The reading as the policy's sample."""
        return ApiSample(at=self.at, p95_ms=self.p95_ms, rps=self.rps, rps_recent=self.rps_recent)


def _signals(**exprs: str) -> str:
    """The vectors ``exprs`` joined with ``or``, each labelled ``signal=<its name>``."""
    return " or ".join(
        f'label_replace({expr}, "signal", "{name}", "", "")' for name, expr in exprs.items()
    )


@dataclass(frozen=True, slots=True)
class HistogramSeries:
    """One histogram read for many stacks; see the module docstring.

    ``series_by`` ``stackLabel``: the series carry ``stack_label`` whose value is the
    stack's name. ``podName``: the series carry ``pod_label`` with the name of the scraped
    pod, and only the API's pods (:data:`API_POD_REGEX`) count. ``matchers`` are more
    label matchers (already checked by the CRD's pattern) added to every selector.
    """

    histogram: str = contract.METRIC_API_REQUEST_DURATION
    series_by: Literal["stackLabel", "podName"] = "stackLabel"
    namespace_label: str = contract.LABEL_NAMESPACE
    stack_label: str = contract.LABEL_STACK
    pod_label: str = "pod"
    matchers: str | None = None

    @property
    def _group(self) -> str:
        stack = self.stack_label if self.series_by == "stackLabel" else STACK_FROM_POD
        return f"{self.namespace_label}, {stack}"

    def _selector(self, suffix: str) -> str:
        if self.series_by == "stackLabel":
            ours = f'{self.stack_label}!=""'
        else:
            ours = f'{self.pod_label}=~"{API_POD_REGEX}"'
        extra = f", {self.matchers.strip()}" if self.matchers and self.matchers.strip() else ""
        return f'{self.histogram}_{suffix}{{{self.namespace_label}!="", {ours}{extra}}}'

    def _stacked(self, expr: str) -> str:
        """``expr`` with the stack's name in a label of its own (podName only)."""
        if self.series_by == "stackLabel":
            return expr
        return f'label_replace({expr}, "{STACK_FROM_POD}", "$1", "{self.pod_label}", ' + (
            f'"{API_POD_REGEX}")'
        )

    def promql(self) -> str:
        """The one query that gives the p95, request rates and data time of every stack."""
        group = self._group
        buckets = self._stacked(f"rate({self._selector('bucket')}[{RATE_WINDOW}])")
        count = self._stacked(f"rate({self._selector('count')}[{RATE_WINDOW}])")
        recent = self._stacked(f"irate({self._selector('count')}[{RATE_WINDOW}])")
        # timestamp() straight on the selector: the samples' own times, not the query's.
        stamps = self._stacked(f"timestamp({self._selector('count')})")
        return _signals(
            p95=f"histogram_quantile(0.95, sum by ({group}, le) ({buckets}))",
            rps=f"sum by ({group}) ({count})",
            rps_recent=f"sum by ({group}) ({recent})",
            at=f"max by ({group}) ({stamps})",
        )

    def rate_promql(self, stacks: Collection[StackKey] = ()) -> str:
        """The request rate alone (the ``rps`` signal of :meth:`promql`), for a range
        query of its history (the forecast's): of ``stacks`` only (and of any other
        stack whose namespace and name are both among theirs), or of every stack."""
        query = self
        if stacks:
            only = self._only(stacks)
            more = self.matchers.strip() if self.matchers else ""
            query = replace(self, matchers=f"{more}, {only}" if more else only)
        count = query._stacked(f"rate({query._selector('count')}[{RATE_WINDOW}])")
        return f"sum by ({query._group}) ({count})"

    def _only(self, stacks: Collection[StackKey]) -> str:
        """Label matchers that select the series of ``stacks``."""
        namespaces = "|".join(sorted({_literal(namespace) for namespace, _ in stacks}))
        stack_names = "|".join(sorted({_literal(name) for _, name in stacks}))
        if self.series_by == "stackLabel":
            return f'{self.namespace_label}=~"{namespaces}", {self.stack_label}=~"{stack_names}"'
        pods = API_POD_REGEX.replace("(.+)", f"({stack_names})", 1)
        return f'{self.namespace_label}=~"{namespaces}", {self.pod_label}=~"{pods}"'

    def key_of(self, labels: Mapping[str, Any]) -> StackKey:
        """The (namespace, stack) a result series belongs to."""
        stack = self.stack_label if self.series_by == "stackLabel" else STACK_FROM_POD
        return (str(labels.get(self.namespace_label, "")), str(labels.get(stack, "")))


@dataclass(frozen=True, slots=True)
class StackQuery:
    """The PromQL templates of one stack, rendered (:func:`render`); at = the query time."""

    namespace: str
    name: str
    p95_seconds: str
    requests_per_second: str

    def promql(self) -> str:
        """Both templates, rendered, as one query."""
        return _signals(p95=f"({self.p95_seconds})", rps=f"({self.requests_per_second})")

    def rate_promql(self, stacks: Collection[StackKey] = ()) -> str:
        """The stack's request rate alone, for a range query of its history (the query
        is this one stack's: ``stacks`` changes nothing)."""
        return f"({self.requests_per_second})"

    def key_of(self, labels: Mapping[str, Any]) -> StackKey:
        """Every series of the answer is this stack's."""
        return (self.namespace, self.name)


LatencyQuery = HistogramSeries | StackQuery


def render(template: str, *, namespace: str, name: str) -> str:
    """``template`` with ``{{namespace}}`` and ``{{name}}`` replaced.

    Both are DNS labels (the API server checks them), so they need no quoting.
    """
    return template.replace(PLACEHOLDER_NAMESPACE, namespace).replace(PLACEHOLDER_NAME, name)


def latency_query(metric: str = contract.METRIC_API_REQUEST_DURATION) -> str:
    """The query of the project's own histogram, grouped by (namespace, stack)."""
    return HistogramSeries(histogram=metric).promql()


def parse_latency(
    result: Iterable[Mapping[str, Any]], *, now: float, query: LatencyQuery | None = None
) -> dict[StackKey, LatencyReading]:
    """Turn the vector ``query`` returned into one reading per stack.

    A stack absent from ``result`` is absent from the answer (the caller
    reports it missing). NaN p95 with a request rate of zero means an idle API
    and reads as 0 ms; any other non-finite value reads as None. A stack with
    more than one series of a signal (a template that did not aggregate) reads
    with ``error`` set.
    """
    query = query or HistogramSeries()
    found: dict[StackKey, dict[str, float]] = {}
    doubled: set[StackKey] = set()
    for series in result:
        labels = series.get("metric", {})
        key = query.key_of(labels)
        try:
            value = float(series["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        signal = str(labels.get("signal", ""))
        if signal in found.setdefault(key, {}):
            doubled.add(key)
        found[key][signal] = value
    readings = {}
    for key, signals in found.items():
        if key in doubled:
            readings[key] = LatencyReading(
                at=now, error="the latency query gave more than one series per signal"
            )
            continue
        rps = _finite(signals.get("rps"))
        p95 = signals.get("p95")
        if p95 is not None and math.isnan(p95) and rps == 0.0:
            p95_ms: float | None = 0.0
        else:
            p95_s = _finite(p95)
            p95_ms = None if p95_s is None else p95_s * 1000.0
        at = _finite(signals.get("at"))
        readings[key] = LatencyReading(
            at=now if at is None else at,
            p95_ms=p95_ms,
            rps=rps,
            rps_recent=_finite(signals.get("rps_recent")),
        )
    return readings


def parse_rates(
    result: Iterable[Mapping[str, Any]], *, query: LatencyQuery | None = None
) -> dict[StackKey, list[tuple[float, float]]]:
    """Turn the matrix a range query of :meth:`HistogramSeries.rate_promql` returned into
    (time, requests per second) per stack, oldest first; non-finite or malformed points
    are skipped. A stack with more than one series (a template that did not aggregate)
    is left out: its history cannot be told apart."""
    query = query or HistogramSeries()
    found: dict[StackKey, list[tuple[float, float]]] = {}
    doubled: set[StackKey] = set()
    for series in result:
        key = query.key_of(series.get("metric", {}))
        if key in found:
            doubled.add(key)
        points = []
        for point in series.get("values", []):
            try:
                at, value = float(point[0]), float(point[1])
            except (IndexError, TypeError, ValueError):
                continue
            if math.isfinite(value):
                points.append((at, value))
        found[key] = sorted(points)
    return {key: points for key, points in found.items() if key not in doubled}


def _literal(name: str) -> str:
    """A namespace or stack name (a DNS name: letters, digits, ``-`` and ``.``) as a
    regular expression that matches it alone, inside a PromQL string: ``.`` escaped."""
    return name.replace(".", "\\\\.")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
