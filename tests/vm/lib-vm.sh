# In-VM helpers, sourced by tests/vm/cases/*.sh (busybox sh).
# A case calls pass/fail once at the end (or exits: 0 = pass).
# SPDX-License-Identifier: MIT
case_name=$(basename "$0" .sh); case_name=${case_name#[0-9][0-9]-}
: "${TRANSPORT:=nbd}"
# Results name the transport when it is not the default: fio-verify@ublk.
[ "$TRANSPORT" = nbd ] || case_name=$case_name@$TRANSPORT
. /opt/trueno/tests/transports/$TRANSPORT.sh

say() { echo "$case_name: $*"; }
pass() { echo "VMTEST $case_name PASS $*"; exit 0; }
fail() { echo "VMTEST $case_name FAIL $*"; exit 1; }
now() { date +%s; }

# json_get FILE KEY: a number from the stats JSON.
json_get() {
  sed -n "s/.*\"$2\": *\([0-9.eE+-]*\).*/\1/p" "$1" 2>/dev/null | head -1
}

# wait_for SECS CMD...: polls CMD every 0.2 s; 1 if it never succeeded.
wait_for() {
  _n=$(( $1 * 5 )); shift
  while [ $_n -gt 0 ]; do "$@" && return 0; sleep 0.2; _n=$((_n - 1)); done
  return 1
}

# Kernel messages since the last call (to print on failure).
dmesg_new() { dmesg -c 2>/dev/null | tail -n "${1:-40}"; }
