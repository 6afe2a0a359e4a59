"""Prometheus counters of the cache: hits, misses, loads, invalidations and errors per domain."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter


class CacheMetrics:
    """The cache's counters, registered on `registry` (a private one when none is given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # A private default keeps two services (or two tests) in one process from colliding.
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.hits = Counter(
            "vdm_cache_hits", "Reads answered by the cache.", ["domain", "layer"], registry=r
        )
        self.misses = Counter("vdm_cache_misses", "Reads the cache missed.", ["domain"], registry=r)
        self.loads = Counter(
            "vdm_cache_loads", "Loads from the database on a miss.", ["domain"], registry=r
        )
        self.invalidations = Counter(
            "vdm_cache_invalidations", "Entries or tags invalidated.", ["domain"], registry=r
        )
        self.errors = Counter(
            "vdm_cache_errors",
            "Cache backend failures that fell back to the database.",
            ["domain", "operation"],
            registry=r,
        )

        self._hits: dict[tuple[str, str], Any] = {}

    def hit(self, domain: str, layer: str) -> None:
        """Count a read answered by `layer` ("local" or "shared"); the hot path, so the
        labelled child is resolved once."""
        child = self._hits.get((domain, layer))
        if child is None:
            child = self._hits[(domain, layer)] = self.hits.labels(domain, layer)
        child.inc()

    def value(self, name: str, **labels: str) -> float:
        """Return the current value of counter `name` (e.g. 'hits') for `labels`; 0 if unseen."""
        found = self.registry.get_sample_value(f"vdm_cache_{name}_total", labels)
        return 0.0 if found is None else found
