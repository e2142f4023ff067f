#!/usr/bin/env bash
# Check a built votecast .deb on this (Debian 12, matching architecture) machine, as root:
#   packaging/test-deb.sh target/debian/votecast_<version>-1_<arch>.deb
# lintian reports no errors; `dpkg -i` installs it (no service is started: the unit is not
# enabled, and a policy-rc.d that forbids starts is put in place if none exists); the
# installed binary, man pages, completions, conffile and unit work (`systemd-analyze
# verify`, `votecast check-config` on the shipped config); `dpkg -r` keeps only the
# conffile and `dpkg -P` leaves none of the package's files behind. A package already
# installed is refused, never replaced; on failure the package is purged again.
set -euo pipefail

die() { echo "packaging/test-deb.sh: $*" >&2; exit 1; }

deb="${1:-}"
[[ -f "$deb" ]] || die "usage: packaging/test-deb.sh PACKAGE.deb"
[[ "$(id -u)" == 0 ]] || die "needs root (dpkg -i)"
for tool in lintian systemd-analyze man; do
    command -v "$tool" >/dev/null || die "$tool not installed (.ci/run installs it)"
done
if dpkg-query -W -f '${Status}' votecast 2>/dev/null | grep -q installed; then
    die "votecast is already installed here; not touching it"
fi

echo "== lintian"
lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs "$deb"

made_policy=""
cleanup() {
    dpkg -P votecast >/dev/null 2>&1 || true
    [[ -z "$made_policy" ]] || rm -f /usr/sbin/policy-rc.d
}
trap cleanup EXIT
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    made_policy=1
fi

echo "== dpkg -i"
dpkg -i "$deb"
files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print substr($6, 2)}')
for f in $files; do [[ -e "$f" ]] || die "$f not installed"; done
version=$(dpkg-deb -f "$deb" Version)
/usr/bin/votecast --version | grep -qx "votecast ${version%-*}" || die "votecast --version"
[[ "$(dpkg-query -W -f '${Conffiles}' votecast)" == *"/etc/votecast/votecast.toml"* ]] ||
    die "/etc/votecast/votecast.toml is not a conffile"
man -w votecast-check-config >/dev/null || die "man votecast-check-config not found"
bash -c 'source /usr/share/bash-completion/completions/votecast && complete -p votecast' \
    >/dev/null || die "bash completion"
# The shipped configuration is valid (its interface may be missing here: a warning, exit 0).
/usr/bin/votecast check-config --config /etc/votecast/votecast.toml >/dev/null ||
    die "check-config rejects the shipped votecast.toml"
unit=/usr/lib/systemd/system/votecast.service
out=$(systemd-analyze verify "$unit" 2>&1) || die "systemd-analyze verify: $out"
if grep -q votecast.service <<<"$out"; then die "systemd-analyze verify: $out"; fi
systemctl is-enabled votecast.service >/dev/null 2>&1 && die "the unit was enabled on install"

echo "== dpkg -r"
dpkg -r votecast
for f in $files; do
    [[ "$f" == /etc/votecast/votecast.toml || ! -e "$f" ]] || die "$f left after dpkg -r"
done
[[ -e /etc/votecast/votecast.toml ]] || die "dpkg -r removed the conffile"
echo "== dpkg -P"
dpkg -P votecast
for f in $files; do [[ ! -e "$f" ]] || die "$f left after dpkg -P"; done
[[ ! -e /etc/votecast ]] || die "/etc/votecast left after dpkg -P"
echo "== $deb: lintian clean, installs, removes and purges cleanly"
