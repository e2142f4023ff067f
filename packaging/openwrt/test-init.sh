#!/bin/sh
# The OpenWrt init script (votecast/files/votecast.init) run against stubbed rc.common,
# UCI and procd functions, with the real votecast binary for its config check:
#   packaging/openwrt/test-init.sh /path/to/votecast
# Checks: a valid config opens one procd instance with the run command, respawn, the
# config file watched for reload, SIGHUP as the reload signal; a bad config is logged and
# opens no instance; a disabled service does nothing; the reload trigger is the UCI
# config "votecast". Prints "N passed, 0 failed" or exits 1 naming the failed check.
# shellcheck disable=SC2034 # UCI_* variables are read by the config_get stubs (eval).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: test-init.sh VOTECAST_BINARY}
[ -x "$bin" ] || { echo "test-init.sh: $bin is not executable" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
calls="$work/calls"
passed=0

fail() {
	echo "FAILED: $1" >&2
	echo "calls:" >&2
	cat "$calls" >&2 || true
	exit 1
}
expect() { grep -qxF -- "$1" "$calls" || fail "$2: no call '$1'"; passed=$((passed + 1)); }
expect_no() { ! grep -q -- "$1" "$calls" || fail "$2: unexpected '$1'"; passed=$((passed + 1)); }

# Stubs: UCI options come from UCI_<option> variables; procd calls are recorded.
config_load() { echo "config_load $*" >>"$calls"; }
config_get() { eval "$1=\${UCI_$3:-\$4}"; }
config_get_bool() { eval "$1=\${UCI_$3:-\$4}"; }
procd_open_instance() { echo "open" >>"$calls"; }
procd_set_param() { echo "param $*" >>"$calls"; }
procd_close_instance() { echo "close" >>"$calls"; }
procd_add_reload_trigger() { echo "reload_trigger $*" >>"$calls"; }
logger() { echo "logger $*" >>"$calls"; }
# The script creates /var/run/votecast; recorded instead.
mkdir() { echo "mkdir $*" >>"$calls"; }

# shellcheck source=votecast/files/votecast.init
. "$here/votecast/files/votecast.init"
PROG=$bin

good="$work/good.toml"
printf 'id = 1\nvoters = [1, 2, 3]\ninterface = "lo"\n' >"$good"
bad="$work/bad.toml"
printf 'id = 0\nvoters = [1, 2, 3]\ninterface = "lo"\n' >"$bad"

# 1. A valid config: one instance, as documented.
: >"$calls"
UCI_config=$good
start_service >"$work/out" 2>&1 || fail "start_service with a valid config returned $?"
expect "config_load votecast" "valid"
expect "open" "valid"
expect "param command $bin run --config $good" "valid"
expect "param respawn 3600 5 5" "valid"
expect "param file $good" "valid"
expect "param reload_signal HUP" "valid"
expect "param term_timeout 10" "valid"
expect "mkdir -p /var/run/votecast" "valid"
expect "close" "valid"
[ "$(grep -c '^open$' "$calls")" = 1 ] || fail "valid: not exactly one instance"

# 2. A bad config: refused with the reason logged, no instance.
: >"$calls"
UCI_config=$bad
if start_service >"$work/out" 2>&1; then fail "start_service with a bad config succeeded"; fi
grep -qF 'config key "id"' "$work/out" || fail "bad: check-config's message does not name the key"
expect "logger -t votecast -p daemon.err $bad: check-config failed; not starting" "bad"
expect_no "open" "bad"

# 3. Disabled in UCI: nothing at all.
: >"$calls"
UCI_config=$good
UCI_enabled=0
start_service || fail "a disabled service returned $?"
expect_no "open" "disabled"
unset UCI_enabled

# 4. Reload on a change of the UCI config.
: >"$calls"
service_triggers
expect "reload_trigger votecast" "triggers"

echo "$passed passed, 0 failed"
