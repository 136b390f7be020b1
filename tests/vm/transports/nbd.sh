# Transport: the kernel's nbd driver, attached as trueno-swap attaches
# (nbdkit --swap on a Unix socket, nbd-client -unix -b 4096 -swap -timeout).
# A transport defines:
#   transport_up NAME SIZE [--swap] [--timeout S] [plugin params...]
#       starts the server and attaches it; sets DEV, SERVER_PID, STATS
#   transport_down NAME      detaches and stops (swapoff first if swap)
#   transport_server_pid NAME
# Other transports (ublk, ...) go next to this file with the same functions,
# and a case runs against them with TRANSPORT=<name>.
# SPDX-License-Identifier: MIT
transport_up() {
  _name=$1 _size=$2; shift 2
  _swap=--no-swapon _t=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --swap) _swap="" ;;
      --timeout) _t="--timeout $2"; shift ;;
      *) break ;;
    esac
    shift
  done
  # The rig's devices are larger than its RAM on purpose (swap-stress: 3x).
  trueno-swap up --name "$_name" --size "$_size" $_swap $_t "$@" overcommit=yes || return 1
  DEV=$(cat /run/trueno/$_name.dev)
  SERVER_PID=$(cat /run/trueno/$_name.pid)
  STATS=/run/trueno/$_name.json
}
transport_down() { trueno-swap down "$1"; }
transport_server_pid() { cat "/run/trueno/$1.pid"; }
