#!/usr/bin/env bash
# Runs every benchmark and writes bench/RESULTS.md (about 60 minutes):
#   bash bench/run_all.sh
# --smoke runs each for a few seconds to prove it still works and writes RESULTS.md into
# $BENCH_OUT (default: a temporary directory) instead, leaving bench/RESULTS.md alone:
#   bash bench/run_all.sh --smoke
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${EROZGAR_VENV:-/opt/erozgar-venv}/bin/python
smoke=0
[[ ${1:-} == --smoke ]] && smoke=1
out=${BENCH_OUT:-$(mktemp -d /tmp/erozgar-bench.XXXXXX)}
mkdir -p "$out"
echo "figures in $out" >&2

if ((smoke)); then
  "$python" bench/centre.py --minutes 0.1 --starts 1 --settle 0 --json "$out/centre.json"
  "$python" bench/scrape.py --switches 1 --scrapes 5 --slow-seconds 1 --json "$out/scrape.json"
  "$python" bench/accuracy.py --minutes 0.2 --interval 2 --json "$out/accuracy-idle.json"
  "$python" bench/snmp_vs_exporter.py --rounds 2 --recording network/switch/cisco-c3560 \
    --json "$out/snmp_vs_exporter.json" >"$out/snmp_vs_exporter.txt"
  "$python" bench/snmp_process.py --rounds 1 --polls 2 --interval 1 --suite v2c \
    --suite SHA/AES-128 --json "$out/snmp_process.json" >"$out/snmp_process.txt"
  "$python" bench/centre.py --snmp-v3 SHA-256/AES-128 --minutes 0.1 --starts 0 --settle 0 \
    --json "$out/centre_v3.json"
  "$python" bench/report.py "$out" >"$out/RESULTS.md"
  echo "smoke run ok: $out/RESULTS.md" >&2
  exit 0
fi

"$python" bench/centre.py --minutes 10 --starts 5 --json "$out/centre.json"
"$python" bench/scrape.py --switches 17 --scrapes 300 --json "$out/scrape.json"
"$python" bench/accuracy.py --minutes 3 --json "$out/accuracy-idle.json"
"$python" bench/accuracy.py --minutes 3 --load 2 --json "$out/accuracy-load.json"
"$python" bench/hub.py --json "$out/hub.json"
# Benchmark 1 needs snmpsim and Debian's prometheus-snmp-exporter (deploy/bootstrap.sh test).
"$python" bench/snmp_vs_exporter.py --json "$out/snmp_vs_exporter.json" |
  tee "$out/snmp_vs_exporter.txt"
"$python" bench/snmp_process.py --json "$out/snmp_process.json" | tee "$out/snmp_process.txt"
"$python" bench/centre.py --snmp-v3 SHA-256/AES-128 --minutes 10 --starts 0 --json "$out/centre_v3.json"
"$python" bench/report.py "$out" >"$out/RESULTS.md"
# The hand-kept "On-demand runs" section (soak, fuzz, fleet path: runs outside this script,
# quoted by the README) carries over from the previous file.
sed -n '/^## On-demand runs$/,$p' bench/RESULTS.md >>"$out/RESULTS.md"
cp "$out/RESULTS.md" bench/RESULTS.md
echo "wrote bench/RESULTS.md" >&2
