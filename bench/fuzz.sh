#!/bin/sh
# The dedicated fuzz run: EROZGAR_FUZZ_EXAMPLES cases per decoder (default 100,000; the raw
# SNMP datagram test runs a tenth as many, each a whole poll over a socket). Pass pytest -k
# to pick one, e.g. bench/fuzz.sh -k walk_layer
set -eu
cd "$(dirname "$0")/.."
export EROZGAR_FUZZ_EXAMPLES="${EROZGAR_FUZZ_EXAMPLES:-100000}"
exec "${PYTEST:-/opt/erozgar-venv/bin/pytest}" -q -p no:warnings -p no:timeout \
    --hypothesis-show-statistics tests/fuzz "$@"
