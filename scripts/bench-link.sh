#!/usr/bin/env bash
# Issue #14's 2G measure (tests/benches/link.rs): a day's sync (about 190 operations up, 190
# down) over an emulated 40 kbit/s link with 300 ± 100 ms one-way delay and 10 % packet loss,
# against the same link at its rate only and plain loopback, 15 rounds, in one run.
#
# The kernel here has no netem, so the link is in user space: two network namespaces, the
# phone's ($NS_PHONE, 10.201.0.1 on TUN dsl0) and the server's ($NS_SRV, 10.201.0.2 on TUN
# dsl1), and scripts/lossy-link.py moving IP packets between the TUNs (rate, delay, loss; see
# its header). The bench runs inside the phone's namespace, starts `doorstep serve` in the
# server's (`ip netns exec`), and starts the forwarder with each mode's settings itself.
# Everything is torn down on exit, failure included.
#
# Needs root, iproute2 and python3. Not part of scripts/test.sh.
# Writes the fragment docs/bench/link.md and its row docs/bench/link.rows, which
# scripts/bench.sh folds into docs/benchmarks.md (run `scripts/bench.sh --page-only` after).
# Usage: scripts/bench-link.sh [--quick] [--rounds N]
#   (--quick: 2 rounds, prints only, writes nothing; --rounds N: N rounds instead of 15)
#        scripts/bench-link.sh --self-test (the forwarder's arithmetic only; no root needed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if [ "${1:-}" = --self-test ]; then
  exec python3 scripts/lossy-link.py --self-test
fi
[ "$(id -u)" = 0 ] || { echo "bench-link.sh: needs root (network namespaces, TUN)" >&2; exit 1; }
command -v ip >/dev/null || { echo "bench-link.sh: needs iproute2 (apt-get install iproute2)" >&2; exit 1; }

python3 scripts/lossy-link.py --self-test
# Build first, outside the namespaces (the phone's namespace has no route to the registry).
cargo bench --locked -p doorstep-tests --bench link --no-run

NS_PHONE="dsl-phone-$$"
NS_SRV="dsl-srv-$$"
SCRATCH="$(mktemp -d)"
cleanup() {
  local ns p
  for ns in "$NS_PHONE" "$NS_SRV"; do
    if ip netns list | grep -qw "$ns"; then
      # Whatever still runs in the namespace was started by this run (server, forwarder).
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS_PHONE"
ip netns add "$NS_SRV"
ip -n "$NS_PHONE" tuntap add dev dsl0 mode tun
ip -n "$NS_SRV" tuntap add dev dsl1 mode tun
ip -n "$NS_PHONE" addr add 10.201.0.1 peer 10.201.0.2 dev dsl0
ip -n "$NS_SRV" addr add 10.201.0.2 peer 10.201.0.1 dev dsl1
for ns_dev in "$NS_PHONE:dsl0" "$NS_SRV:dsl1"; do
  ip -n "${ns_dev%%:*}" link set lo up
  ip -n "${ns_dev%%:*}" link set "${ns_dev##*:}" up
done

export DOORSTEP_LINK_SERVER_NETNS="$NS_SRV"
export DOORSTEP_LINK_SERVER_IP=10.201.0.2
export DOORSTEP_LINK_FORWARDER="python3 $ROOT/scripts/lossy-link.py --ns-a $NS_PHONE --dev-a dsl0 --ns-b $NS_SRV --dev-b dsl1"
export DOORSTEP_LINK_SCRATCH="$SCRATCH"
ip netns exec "$NS_PHONE" cargo bench --locked --offline -p doorstep-tests --bench link -- "$@"
