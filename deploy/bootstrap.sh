#!/usr/bin/env bash
# Installs what erozgar-agent needs on a fresh Debian 12 machine, as root, idempotently.
#   deploy/bootstrap.sh        the agent and the demo
#   deploy/bootstrap.sh test   plus the real peers the tests start (snmpd, snmpsim, promtool...),
#                              and ansible-core + ansible-lint in their own venv (the rollout)
# The venv is made from Debian's /usr/bin/python3 outside /root: snmpsim drops privileges to
# `nobody`, which must be able to read the Python installation.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${EROZGAR_VENV:-/opt/erozgar-venv}
mode=${1:-agent}

packages=(python3 python3-venv iperf3)  # iperf3: the capacity tests' client
extras=""
if [[ $mode == test ]]; then
  packages+=(snmpd snmp prometheus socat mbpoll python3-gdbm chromium)
  packages+=(prometheus-snmp-exporter)  # benchmark 1 (bench/snmp_vs_exporter.py) in the smoke test
  packages+=(iproute2 nftables)  # link-probe tests: network namespaces, injected loss
  packages+=(dnsmasq-base)  # DNS probe tests: a resolver on loopback (no system service)
  packages+=(openssl)  # capacity tests: the iperf3 server's RSA key for authentication
  packages+=(nut-server nut-client)  # NUT tests: upsd with the dummy-ups driver
  packages+=(faketime)  # clock-jump fault test: libfaketime
  # deploy/ tests: vmagent, VictoriaMetrics, vmalert, Alertmanager/amtool, systemd-analyze
  packages+=(victoria-metrics prometheus-alertmanager systemd)
  # packaging/build-deb.sh and its tests: git ls-files, objdump (glibc needed), lintian;
  # deploy/ansible's tests: python3-apt (the apt modules), dpkg-scanpackages (a test repository)
  packages+=(git binutils lintian python3-apt dpkg-dev)
  extras="[test]"
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x $venv/bin/python ]]; then
  echo "bootstrap: creating $venv" >&2
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
fi
"$venv/bin/pip" install -q --disable-pip-version-check -e "$root$extras" 2>&1 \
  | grep -v -e '^WARNING: Location' -e '^$' >&2 || true
# Fails loudly if the install did not take; from / so the checkout itself is not on the path.
(cd / && "$venv/bin/python" -c "import agent, collectors, exporters, simulators")

if [[ $mode == test ]]; then
  ansible_venv=${EROZGAR_ANSIBLE_VENV:-/opt/erozgar-ansible-venv}
  [[ -x $ansible_venv/bin/python ]] || /usr/bin/python3 -m venv "$ansible_venv"
  "$ansible_venv/bin/pip" install -q --disable-pip-version-check \
    -r "$root/deploy/ansible/requirements.txt" 2>&1 | grep -v -e '^WARNING: Location' >&2 || true
  "$ansible_venv/bin/ansible-playbook" --version >/dev/null
fi
