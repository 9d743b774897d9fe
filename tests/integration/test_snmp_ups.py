"""UPS over SNMP against a real snmpsim: the UPS tests of tests/unit/test_snmp_golden.py.

The unit tests replay each UPS recording of snmpsim-data in-process; here the same tests run with
snmpsim serving the same files, so both must match the same tests/fixtures/snmp-ups/<name>/
expected.yaml and give the same metrics, status page and `check` verdict.
"""

from __future__ import annotations

import pytest

from collectors.snmp.client import SnmpSessions
from tests.unit.test_snmp_golden import (  # noqa: F401 (collected and run here, against snmpsim)
    test_check_shows_a_ups_card_without_ports_as_a_ups_not_a_failed_router,
    test_eaton_through_device_poller_shows_charge_and_mains,
    test_huawei_unknowns_are_counted_not_exported,
    test_ups_recording_exports_ups_metrics_without_sentinels,
    test_ups_recording_matches_golden_file,
)

from .conftest import Recording

pytestmark = pytest.mark.integration


@pytest.fixture
def recordings(snmpsim: dict[str, Recording]) -> dict[str, Recording]:
    return snmpsim


@pytest.fixture
def sessions() -> SnmpSessions:
    return SnmpSessions()
