"""A scrape's metric families, created on first use so each name appears once, in order."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)

POLLED = " (latest poll)"
Family = GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily | HistogramMetricFamily


class Families:
    """Creates each family once per scrape, on first use, and yields them in order."""

    def __init__(self) -> None:
        self._by_name: dict[str, Family] = {}

    def gauge(self, name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = GaugeMetricFamily(f"erozgar_{name}", doc, labels=labels)
        assert isinstance(family, GaugeMetricFamily)
        return family

    def counter(self, name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = CounterMetricFamily(
                f"erozgar_{name}", doc, labels=labels
            )
        assert isinstance(family, CounterMetricFamily)
        return family

    def info(self, name: str, doc: str, labels: list[str]) -> InfoMetricFamily:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = InfoMetricFamily(f"erozgar_{name}", doc, labels=labels)
        assert isinstance(family, InfoMetricFamily)
        return family

    def histogram(self, name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = HistogramMetricFamily(
                f"erozgar_{name}", doc, labels=labels
            )
        assert isinstance(family, HistogramMetricFamily)
        return family

    def __iter__(self) -> Iterator[Family]:
        return iter(self._by_name.values())
