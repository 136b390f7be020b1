# Transport: the kernel's ublk driver, attached as trueno-swap attaches
# (trueno-swap up --transport ublk: trueno-ublk add ... swap=on, one queue
# per CPU).  The same functions as nbd.sh:
#   transport_up NAME SIZE [--swap] [--timeout S] [params...]
#       starts the server and its /dev/ublkbN; sets DEV, SERVER_PID, STATS
#       (--timeout is nbd's: ignored; the kernel fails I/O when the server
#       dies, it has no timeout to wait for)
#   transport_down NAME      swapoff if swap, then trueno-ublk del
#   transport_server_pid NAME
# SPDX-License-Identifier: MIT
transport_up() {
  _name=$1 _size=$2; shift 2
  _swap=--no-swapon
  while [ $# -gt 0 ]; do
    case "$1" in
      --swap) _swap="" ;;
      --timeout) shift ;;
      *) break ;;
    esac
    shift
  done
  trueno-swap up --transport ublk --name "$_name" --size "$_size" $_swap "$@" || return 1
  DEV=$(cat /run/trueno/$_name.dev)
  SERVER_PID=$(cat /run/trueno/$_name.pid)
  STATS=/run/trueno/$_name.json
}
transport_down() { trueno-swap down "$1"; }
transport_server_pid() { cat "/run/trueno/$1.pid"; }
