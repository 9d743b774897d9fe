"""How hard the fuzzers push: a few hundred examples each in CI, EROZGAR_FUZZ_EXAMPLES for a
dedicated run (bench/fuzz.sh runs 100,000 per decoder)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("EROZGAR_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # wall time per case varies with the box; hangs are caught by wait_for
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # no .hypothesis directory in the tree
)
# Cases that are a whole poll over a real socket, with timeouts: a tenth as many.
WIRE = settings(FUZZ, max_examples=max(EXAMPLES // 10, 20))
