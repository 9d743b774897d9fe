#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, then runs all of them.
# Extra arguments go to pytest, e.g. `bash tests/run.sh tests/unit -q`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${EROZGAR_VENV:-/opt/erozgar-venv}
"$root/deploy/bootstrap.sh" test
cd "$root"
"$venv/bin/ruff" check .
exec "$venv/bin/pytest" "$@"
