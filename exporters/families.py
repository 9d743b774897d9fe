"""A scrape's metric families, created on first use so each name appears once, in order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)

POLLED = " (latest poll)"
Family = GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily | HistogramMetricFamily
_F = TypeVar("_F", GaugeMetricFamily, CounterMetricFamily, InfoMetricFamily, HistogramMetricFamily)


class Families:
    """Creates each family once per scrape, on first use, and yields them in order."""

    def __init__(self) -> None:
        self._by_name: dict[str, Family] = {}

    def _get(self, kind: type[_F], name: str, doc: str, labels: list[str]) -> _F:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = kind(f"erozgar_{name}", doc, labels=labels)
        assert isinstance(family, kind), f"{name} is already a {type(family).__name__}"
        return family

    def gauge(self, name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
        return self._get(GaugeMetricFamily, name, doc, labels)

    def counter(self, name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
        return self._get(CounterMetricFamily, name, doc, labels)

    def info(self, name: str, doc: str, labels: list[str]) -> InfoMetricFamily:
        return self._get(InfoMetricFamily, name, doc, labels)

    def histogram(self, name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
        return self._get(HistogramMetricFamily, name, doc, labels)

    def __iter__(self) -> Iterator[Family]:
        return iter(self._by_name.values())
