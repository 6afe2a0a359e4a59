"""Prometheus metrics of the HTTP layer: requests, latencies, rate-limit and auth refusals."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMetrics:
    """The HTTP counters and histogram, registered on one process registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "vdm_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "vdm_http_request_seconds", "Time to answer an HTTP request", ["method", "route"],
            registry=registry,
        )  # fmt: skip
        self.rate_limited = Counter(
            "vdm_rate_limited", "Requests refused by the rate limit", registry=registry
        )
        self.auth_failures = Counter(
            "vdm_auth_failures", "Requests refused for missing or bad credentials",
            registry=registry,
        )  # fmt: skip
        # Labelled children by (method, route template, status): resolving labels on every
        # request (a lock and a lookup per metric) cost more than the counting itself.
        self._answered: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and record how long it took."""
        key = (method, route, status)
        children = self._answered.get(key)
        if children is None:
            children = self._answered[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)


def http_metrics(state: Any) -> HttpMetrics | None:
    """The metrics of the app whose `state` this is (None before the runtime exists)."""
    runtime = getattr(state, "runtime", None)
    if runtime is None:
        return None
    found = runtime.extras.get("http_metrics")
    if found is None:
        found = runtime.extras["http_metrics"] = HttpMetrics(runtime.metrics)
    assert isinstance(found, HttpMetrics)
    return found


class RequestMetrics:
    """Pure ASGI middleware: counts each HTTP request by route template and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, then record its status and duration."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            metrics = http_metrics(scope["app"].state)
            if metrics is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                metrics.answered(scope["method"], route, status, time.perf_counter() - started)
