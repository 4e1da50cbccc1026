"""Response time of one API pod: c requests at once, requests of several costs.

A pod serves ``c`` requests at once. Requests come in classes (a share and a cost,
the cost multiplying the base service time); each class's service time is
exponential, so the service time is a mixture of exponentials (one class: M/M/c,
exact). The chance of waiting is Erlang's C at the pod's utilisation; the wait, when
there is one, is exponential with the M/M/c mean scaled by ``(1 + SCV) / 2`` (the
Allen-Cunneen approximation, ``SCV`` the squared coefficient of variation of the
service time; exact for one class). The response time's tail ``P(T > t)`` then has a
closed form per class; the p95 is found by bisection and tabulated on a grid of
utilisation (step 0.001), which keeps a six-hour run to a second or two.

A cost factor ``f`` (noise, a release) scales every service time, and so the whole
response time: the tail at ``t`` with factor ``f`` is the tail at ``t / f``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

GRID_STEP = 0.001
# Utilisation at which the stationary model stops; above it the plant's fluid
# queue carries the overload.
RHO_MAX = 0.99
QUANTILE = 0.95

Classes = tuple[tuple[float, float], ...]
"""(share, cost) of each kind of request; shares sum to 1."""
ONE_CLASS: Classes = ((1.0, 1.0),)


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits, for ``servers`` and offered load ``lambda/mu``."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= offered / k
        total += term
    last = term * offered / servers * servers / (servers - offered)
    return last / (total + last)


class PodLatency:
    """Latency of one pod with ``servers`` concurrent requests, base ``service_s`` and
    request ``classes``."""

    def __init__(self, *, servers: int, service_s: float, classes: Classes = ONE_CLASS) -> None:
        self.servers = servers
        self._classes = tuple((share, 1.0 / (cost * service_s)) for share, cost in classes)
        self.mean_service_s = sum(share * cost * service_s for share, cost in classes)
        second = sum(share * 2 * (cost * service_s) ** 2 for share, cost in classes)
        scv = second / self.mean_service_s**2 - 1
        self._wait_scale = (1 + scv) / 2
        # The M/M/c wait rate is servers * mu * (1 - rho) with mu = 1 / mean service.
        self._mu = 1.0 / self.mean_service_s
        points = round(RHO_MAX / GRID_STEP) + 1
        self._c = [erlang_c(servers, i * GRID_STEP * servers) for i in range(points)]
        self._p95 = [self._solve(i * GRID_STEP) for i in range(points)]

    @property
    def capacity(self) -> float:
        """Requests per second one pod completes at full utilisation (cost factor 1)."""
        return self.servers / self.mean_service_s

    def tail(self, t: float, rho: float) -> float:
        """``P(response time > t)`` at utilisation ``rho`` (<= RHO_MAX), cost factor 1."""
        if t <= 0:
            return 1.0
        return self._tail(t, self._lerp(self._c, rho), rho)

    def p95(self, rho: float) -> float:
        """The 95th percentile of response time in seconds at utilisation ``rho``."""
        return self._lerp(self._p95, rho)

    def _tail(self, t: float, wait_c: float, rho: float) -> float:
        theta = self.servers * self._mu * (1 - rho) / self._wait_scale
        total = 0.0
        for share, mu in self._classes:
            if abs(theta - mu) < 1e-9:
                both = math.exp(-mu * t) * (1 + mu * t)
            else:
                both = (mu * math.exp(-theta * t) - theta * math.exp(-mu * t)) / (mu - theta)
            total += share * ((1 - wait_c) * math.exp(-mu * t) + wait_c * both)
        return total

    def _lerp(self, table: list[float], rho: float) -> float:
        x = min(max(rho, 0.0), RHO_MAX) / GRID_STEP
        low = min(int(x), len(table) - 2)
        frac = x - low
        return table[low] * (1 - frac) + table[low + 1] * frac

    def _solve(self, rho: float) -> float:
        wait_c = erlang_c(self.servers, rho * self.servers)
        low, high = 0.0, 1.0
        while self._tail(high, wait_c, rho) > 1 - QUANTILE:
            high *= 2
        for _ in range(60):
            middle = (low + high) / 2
            if self._tail(middle, wait_c, rho) > 1 - QUANTILE:
                low = middle
            else:
                high = middle
        return high


Part = tuple[float, float, float, float]
"""(requests, utilisation, cost factor, extra wait in seconds) of one stretch of time."""


def mixture_p95(model: PodLatency, parts: Sequence[Part]) -> float | None:
    """The p95 of requests pooled from ``parts``, as ``histogram_quantile`` over a rate
    window sees them (without bucket error). None if no part has requests.

    The quantile lies between the parts' own p95s, so bisection starts there.
    """
    total = sum(part[0] for part in parts)
    if total <= 0:
        return None
    own = [model.p95(rho) * factor + extra for weight, rho, factor, extra in parts if weight > 0]
    low, high = min(own), max(own)
    goal = (1 - QUANTILE) * total
    while high - low > 1e-4:
        middle = (low + high) / 2
        tail = sum(
            weight * model.tail((middle - extra) / factor, rho)
            for weight, rho, factor, extra in parts
            if weight > 0
        )
        if tail > goal:
            low = middle
        else:
            high = middle
    return high


def load_at_target(model: PodLatency, *, target_s: float, factor: float = 1.0) -> float | None:
    """The highest requests per second one pod serves with its p95 within ``target_s``,
    as a load test finds it; None when even an idle pod is slower than the target."""
    if model.p95(0.0) * factor > target_s:
        return None
    low, high = 0.0, RHO_MAX
    if model.p95(high) * factor <= target_s:
        return high * model.capacity / factor
    for _ in range(50):
        middle = (low + high) / 2
        if model.p95(middle) * factor <= target_s:
            low = middle
        else:
            high = middle
    return low * model.capacity / factor
