"""Response time of one API pod as an M/M/c queue (c concurrent requests, exponential service).

A request's response time is its wait plus its service. With Erlang's C formula
for the chance of waiting, the wait is 0 or exponential with rate ``c*mu - lambda``,
so the tail ``P(T > t)`` has a closed form; the p95 is found by bisection. Values
are tabulated on a grid of utilisation (step 0.001) and interpolated, which keeps
a six-hour run to a second or two.
"""

from __future__ import annotations

import math

GRID_STEP = 0.001
# Utilisation at which the stationary model stops; above it the plant's fluid
# queue carries the overload.
RHO_MAX = 0.99
QUANTILE = 0.95


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


class MMc:
    """Latency of one pod with ``servers`` concurrent requests of mean ``service_s``."""

    def __init__(self, *, servers: int, service_s: float) -> None:
        self.servers = servers
        self.mu = 1.0 / service_s
        points = round(RHO_MAX / GRID_STEP) + 1
        self._c = [erlang_c(servers, i * GRID_STEP * servers) for i in range(points)]
        self._p95 = [self._solve(i * GRID_STEP) for i in range(points)]

    @property
    def capacity(self) -> float:
        """Requests per second one pod completes at full utilisation."""
        return self.servers * self.mu

    def tail(self, t: float, rho: float) -> float:
        """``P(response time > t)`` at utilisation ``rho`` (<= RHO_MAX)."""
        if t <= 0:
            return 1.0
        wait_c = self._lerp(self._c, rho)
        mu = self.mu
        theta = self.servers * mu * (1 - rho)
        if abs(theta - mu) < 1e-9:
            both = math.exp(-mu * t) * (1 + mu * t)
        else:
            both = (mu * math.exp(-theta * t) - theta * math.exp(-mu * t)) / (mu - theta)
        return (1 - wait_c) * math.exp(-mu * t) + wait_c * both

    def p95(self, rho: float) -> float:
        """The 95th percentile of response time in seconds at utilisation ``rho``."""
        return self._lerp(self._p95, rho)

    def _lerp(self, table: list[float], rho: float) -> float:
        x = min(max(rho, 0.0), RHO_MAX) / GRID_STEP
        low = min(int(x), len(table) - 2)
        frac = x - low
        return table[low] * (1 - frac) + table[low + 1] * frac

    def _solve(self, rho: float) -> float:
        wait_c = erlang_c(self.servers, rho * self.servers)
        mu, theta = self.mu, self.servers * self.mu * (1 - rho)

        def tail(t: float) -> float:
            if abs(theta - mu) < 1e-9:
                both = math.exp(-mu * t) * (1 + mu * t)
            else:
                both = (mu * math.exp(-theta * t) - theta * math.exp(-mu * t)) / (mu - theta)
            return (1 - wait_c) * math.exp(-mu * t) + wait_c * both

        low, high = 0.0, 1.0
        while tail(high) > 1 - QUANTILE:
            high *= 2
        for _ in range(60):
            middle = (low + high) / 2
            if tail(middle) > 1 - QUANTILE:
                low = middle
            else:
                high = middle
        return high


def mixture_p95(model: MMc, parts: list[tuple[float, float, float]]) -> float | None:
    """The p95 of requests pooled from ``parts`` of (weight, rho, extra wait seconds),
    as ``histogram_quantile`` over a rate window sees them (without bucket error).

    None if no part has weight. The quantile lies between the parts' own p95s, so
    bisection starts there.
    """
    total = sum(weight for weight, _, _ in parts)
    if total <= 0:
        return None
    own = [model.p95(rho) + extra for weight, rho, extra in parts if weight > 0]
    low, high = min(own), max(own)
    goal = (1 - QUANTILE) * total
    while high - low > 1e-4:
        middle = (low + high) / 2
        tail = sum(w * model.tail(middle - extra, rho) for w, rho, extra in parts if w > 0)
        if tail > goal:
            low = middle
        else:
            high = middle
    return high
