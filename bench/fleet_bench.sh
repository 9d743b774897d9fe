#!/usr/bin/env bash
# The fleet path's long measurements (CI runs the short versions in
# tests/integration/test_deploy_fleet.py): alert latency at the shipped intervals, a 5-minute
# outage of the central store, and a typical site's bytes over 5 minutes. Prints the figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=${EROZGAR_VENV:-/opt/erozgar-venv}
EROZGAR_SHIPPED_INTERVALS=1 "$venv/bin/pytest" -q -s -p no:warnings \
  tests/integration/test_deploy_fleet.py -k site_admin_webhook
EROZGAR_OUTAGE_SECONDS=${OUTAGE_SECONDS:-300} "$venv/bin/pytest" -q -s -p no:warnings \
  tests/integration/test_deploy_fleet.py -k isp_outage
EROZGAR_BUDGET_SECONDS=${BUDGET_SECONDS:-300} "$venv/bin/pytest" -q -s -p no:warnings \
  tests/integration/test_deploy_fleet.py -k series_budget
