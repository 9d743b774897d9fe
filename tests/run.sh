#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, then runs all of them.
# Extra arguments go to pytest, e.g. `bash tests/run.sh tests/unit -q`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${EROZGAR_VENV:-/opt/erozgar-venv}
"$root/deploy/bootstrap.sh" test
cd "$root"
"$venv/bin/ruff" check .
# Two workers, a test file each at a time (its peers and module fixtures stay together): most
# integration tests wait on real peers and clocks, so the suite takes about half as long on 2 cores.
exec "$venv/bin/pytest" -n 2 --dist loadfile "$@"
