#!/usr/bin/env bash
# Builds erozgar-agent_<version>_<arch>.deb and erozgar-agent-shipper_<version>_all.deb from this
# checkout, on Debian 12:
#   bash packaging/build-deb.sh [--version V] [--out DIR]     (default: pyproject's version, dist/)
# Tooling: plain dpkg-deb and this script. The package is a virtualenv built with Debian's
# /usr/bin/python3 from the exactly pinned wheels, plus files of this repository: there is no
# upstream tarball, changelog or build dependency for debhelper's source-package machinery to
# manage, and dh-virtualenv (in Debian 12, built on debhelper) would add that machinery and a
# debian/ tree to maintain for the same venv. The maintainer scripts are what dh_installsystemd
# and dh_installsysusers generate, written out (packaging/debian/*/).
# The dependencies' venv is built once per (Python, pins) in the cache (EROZGAR_DEB_CACHE,
# default ~/.cache/erozgar-deb); a build then only adds this project's wheel, so building N and
# N+1 differ in the version alone. Reproducible: SOURCE_DATE_EPOCH (default: the last commit's
# time) stamps every file, and the same checkout, version and cache give the same bytes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=/usr/bin/python3
version=""
out=$root/dist
while (($#)); do
  case $1 in
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: build-deb.sh [--version V] [--out DIR]" >&2; exit 2 ;;
  esac
done
pyproject() { "$python" -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print(p[sys.argv[2]] if sys.argv[2] == "version" else "\n".join(p[sys.argv[2]]))' "$root/pyproject.toml" "$1"; }
version=${version:-$(pyproject version)}
# The same string is the Python version (PEP 440) and the Debian one: release numbers only.
[[ $version =~ ^[0-9]+(\.[0-9]+)*$ ]] || { echo "build-deb: version $version: use digits and dots" >&2; exit 2; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}
arch=$(dpkg --print-architecture)
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
mapfile -t deps < <(pyproject dependencies)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/.build  # a fixed path: the venv's RECORD files name no temporary directory
rm -rf "$work" && mkdir -p "$work"

# 1. The dependencies' venv, once per Python and pins. Binary wheels only: nothing is compiled.
cache=${EROZGAR_DEB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/erozgar-deb}
constraints=$root/packaging/constraints.txt
key=$(printf '%s\n' "$pyver" "$arch" "${deps[@]}" | cat - "$constraints" | sha256sum | cut -c1-16)
base=$cache/venv-$key
if [[ ! -x $base/bin/python ]]; then
  echo "build-deb: building the dependencies' venv in $base" >&2
  mkdir -p "$cache"
  fresh=$(mktemp -d "$base.XXXXXX")  # two builds at once each make their own, one is kept
  "$python" -m venv "$fresh"
  "$fresh/bin/python" -m pip install -q --disable-pip-version-check --no-compile \
    --only-binary=:all: -c "$constraints" "${deps[@]}"
  mv -T "$fresh" "$base" 2>/dev/null || rm -rf "$fresh"
fi

# 2. This project's wheel, from the tracked files (as they are in the work tree), at $version.
mkdir -p "$work/src"
git -C "$root" ls-files -z | (cd "$root" && tar --null -T - -cf -) | tar -C "$work/src" -xf -
sed -i -E "s/^version = \".*\"/version = \"$version\"/" "$work/src/pyproject.toml"
"$base/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps \
  --wheel-dir "$work/wheel" "$work/src"

# 3. erozgar-agent: the venv at /opt/erozgar-agent/venv, units, snippets, configs.
stage=$work/erozgar-agent
venv=$stage/opt/erozgar-agent/venv
mkdir -p "$stage/opt/erozgar-agent"
cp -a "$base" "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-compile \
  "$work"/wheel/erozgar_agent-*.whl
"$venv/bin/python" -m pip uninstall -q -y pip setuptools
rm -f "$venv"/bin/[Aa]ctivate* "$venv"/bin/pip*
find "$venv" -name __pycache__ -prune -exec rm -rf {} +
find "$venv" \( -name direct_url.json -o -name .DS_Store \) -delete
"$python" "$root/packaging/fix-venv-paths.py" "$venv" /opt/erozgar-agent/venv
"$venv/bin/python" -m compileall -q -j0 --invalidation-mode unchecked-hash \
  -s "$stage" -p / "$venv/lib"

pkg=$root/packaging/debian/erozgar-agent
install -D -m 0644 "$pkg/agent.yml" "$stage/etc/erozgar-agent/agent.yml"
mkdir -p "$stage/usr/bin" && ln -s /opt/erozgar-agent/venv/bin/erozgar-agent "$stage/usr/bin/"
unit=$(sed -e 's|/opt/erozgar-venv/bin/erozgar-agent|/usr/bin/erozgar-agent|' \
  -e 's|file:///opt/erozgar-agent-src/README.md|file:///usr/share/doc/erozgar-agent/README.md.gz|' \
  "$root/deploy/systemd/erozgar-agent.service")
grep -q '^ExecStart=/usr/bin/erozgar-agent run' <<<"$unit" \
  || { echo "build-deb: the unit's ExecStart is not the one expected" >&2; exit 1; }
install -D -m 0644 /dev/stdin "$stage/lib/systemd/system/erozgar-agent.service" <<<"$unit"
install -D -m 0644 "$root/deploy/systemd/erozgar.sysusers.conf" \
  "$stage/usr/lib/sysusers.d/erozgar-agent.conf"
install -D -m 0644 "$root/deploy/systemd/60-erozgar-ping.conf" \
  "$stage/usr/lib/sysctl.d/60-erozgar-ping.conf"
doc=$stage/usr/share/doc/erozgar-agent
install -D -m 0644 "$root/deploy/config.example.yml" "$doc/config.example.yml"
install -D -m 0644 "$root/deploy/systemd/erozgar-agent.service.d/raw-icmp.conf" \
  "$doc/examples/raw-icmp.conf"
gzip -9n <"$root/README.md" >"$doc/README.md.gz"
install -m 0644 "$root/packaging/debian/copyright" "$doc/copyright"
install -D -m 0644 "$root/packaging/debian/lintian-overrides" \
  "$stage/usr/share/lintian/overrides/erozgar-agent"
# The wheels' compiled modules need this glibc at least (their newest symbol version).
glibc=$(find "$venv" -name '*.so*' -type f -exec objdump -T {} + \
  | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)

# 4. erozgar-agent-shipper: vmagent's unit and scrape config (vmagent: Debian's victoria-metrics).
ship=$work/erozgar-agent-shipper
install -D -m 0644 "$root/deploy/systemd/erozgar-vmagent.service" \
  "$ship/lib/systemd/system/erozgar-vmagent.service"
install -D -m 0644 "$root/deploy/vmagent/scrape.yml" "$ship/etc/erozgar-agent/vmagent-scrape.yml"
sdoc=$ship/usr/share/doc/erozgar-agent-shipper
install -D -m 0644 "$root/deploy/vmagent/vmagent.env.example" "$sdoc/vmagent.env.example"
install -D -m 0644 "$root/deploy/vmagent/scrape-secured.yml" "$sdoc/examples/scrape-secured.yml"
install -D -m 0644 "$root/deploy/vmagent/erozgar-vmagent.service.d/agent-credentials.conf" \
  "$sdoc/examples/agent-credentials.conf"
install -m 0644 "$root/packaging/debian/copyright" "$sdoc/copyright"

# 5. Control files, metadata normalised, dpkg-deb.
build() {  # build NAME ARCH STAGE EXTRA-SUBSTITUTIONS...
  local name=$1 parch=$2 dir=$3 src=$root/packaging/debian/$1
  mkdir -p "$dir/DEBIAN"
  for script in postinst prerm postrm; do
    [[ -f $src/$script ]] && install -m 0755 "$src/$script" "$dir/DEBIAN/$script"
  done
  {
    echo "$name ($version) stable; urgency=medium"
    echo
    echo "  * Built from commit $(git -C "$root" rev-parse --short HEAD) of the repository."
    echo
    echo " -- erozgar-agent maintainers <erozgar-agent@example.pk>  $(date -uR -d "@$SOURCE_DATE_EPOCH")"
  } | gzip -9n >"$dir/usr/share/doc/$name/changelog.gz"
  [[ -f $src/conffiles ]] && install -m 0644 "$src/conffiles" "$dir/DEBIAN/conffiles"
  (cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
    | xargs -0r md5sum >DEBIAN/md5sums)
  sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$parch/" -e "s/@PYVER@/$pyver/" -e "s/@GLIBC@/${glibc:-}/" \
    -e "s/@PYNEXT@/${pyver%.*}.$((${pyver#*.} + 1))/" \
    -e "s/@SIZE@/$(du -sk --apparent-size --exclude=DEBIAN "$dir" | cut -f1)/" \
    "$src/control" >"$dir/DEBIAN/control"  # apparent: blocks of unwritten-back files read 0
  find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  chmod -R u+rwX,go+rX,go-w "$dir"
  dpkg-deb --root-owner-group --threads-max=1 -Zxz --build "$dir" \
    "$out/${name}_${version}_${parch}.deb" >/dev/null
  echo "$out/${name}_${version}_${parch}.deb"
}
build erozgar-agent "$arch" "$stage"
build erozgar-agent-shipper all "$ship"
rm -rf "$work"
