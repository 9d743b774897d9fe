"""Fast /metrics: text format 0.0.4 assembled from pre-rendered chunks.

prometheus_client formats every sample on every scrape, about 7 us a sample: 70 ms at 10,000
series. Most samples only change when a poll replaces a device's immutable status snapshot, so
AgentCollector renders those once per snapshot (exporters/prometheus.py) and a scrape only
joins text. A family's samples may come from many devices; `Assembler` keeps each family's one
HELP/TYPE pair and appends every device's lines under it, in first-use order, so the text is
byte for byte what prometheus_client's generate_latest writes for the same registry.

The fast path always answers text format 0.0.4 (Prometheus accepts it whatever it lists first
in Accept), gzip-compressed when the client accepts gzip. `name[]` filters are not supported
(prometheus_client's own app answered them with nothing for this registry: AgentCollector
describes no names up front).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# (family name, "# HELP ...\n# TYPE ...\n", sample lines)
Rendered = tuple[str, str, str]
StartResponse = Callable[..., Any]
# Level 1 compresses a 1 MB exposition about 10x at a fifth of the CPU of level 9.
GZIP_LEVEL = 1


@runtime_checkable
class TextCollector(Protocol):
    """A collector that can write its own text format 0.0.4, faster than collect()."""

    def render_text(self) -> str: ...


class _One:
    """generate_latest reads any object with collect(); this one holds a single family."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def collect(self) -> Iterable[Metric]:
        return (self.metric,)


def render(families: Iterable[Metric]) -> list[Rendered]:
    """Each family as prometheus_client writes it, split into its header and its samples."""
    out = []
    for family in families:
        text = generate_latest(_One(family)).decode()  # type: ignore[arg-type]
        split = text.index("\n", text.index("\n") + 1) + 1  # after "# HELP" and "# TYPE"
        out.append((family.name, text[:split], text[split:]))
    return out


class Assembler:
    """Families in first-use order, each with one header and every contributor's samples."""

    def __init__(self) -> None:
        self._families: dict[str, list[str]] = {}

    def add(self, rendered: Iterable[Rendered]) -> None:
        families = self._families
        for name, header, samples in rendered:
            parts = families.get(name)
            if parts is None:
                families[name] = [header, samples]
            else:
                parts.append(samples)

    def text(self) -> str:
        return "".join(part for parts in self._families.values() for part in parts)


class TextRegistry(CollectorRegistry):
    """A CollectorRegistry that also writes its whole text exposition fast: collectors with
    render_text() write their own, the rest go through generate_latest, in register order."""

    def __init__(self) -> None:
        super().__init__()
        self._in_order: list[Collector] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        self._in_order.append(collector)

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        self._in_order.remove(collector)

    def render_text(self) -> str:
        parts = []
        for collector in list(self._in_order):
            if isinstance(collector, TextCollector):
                parts.append(collector.render_text())
            else:
                parts.append(generate_latest(collector).decode())  # type: ignore[arg-type]
        return "".join(parts)


def metrics_app(registry: CollectorRegistry) -> Callable[..., Iterable[bytes]]:
    """WSGI app for /metrics (GET and HEAD are checked by the caller)."""
    if not isinstance(registry, TextRegistry):
        return make_wsgi_app(registry)  # type: ignore[no-any-return]

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = registry.render_text().encode()
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            body = gzip.compress(body, compresslevel=GZIP_LEVEL)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return app
