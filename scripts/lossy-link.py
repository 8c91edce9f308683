#!/usr/bin/env python3
"""A user-space lossy, slow link between two network namespaces (no netem needed).

Moves IP packets between a TUN device in namespace A and one in namespace B and, per
direction, on the way:
  - rate: the packet is serialised on a link of RATE bit/s (a FIFO: it waits until the packets
    before it are sent, then takes len*8/RATE s); RATE 0 means no limit;
  - loss: with probability LOSS it is lost on the wire, after it took its time on the link
    (independent random loss, like a radio frame lost; TCP retransmits it);
  - delay: it arrives DELAY +- JITTER ms (uniform) after it left the link; packets of one
    direction never overtake each other (an arrival earlier than the one before it waits for
    it: order is kept, as on a real bearer, so the jitter is a bit less than uniform);
  - queue: at most LIMIT packets wait for the link per direction (tail drop beyond; 1000 like
    netem's default, so in practice nothing is dropped there).
Random draws are seeded (--seed), one generator per direction: the same packet sequence gets
the same fate. (TCP's timing still varies from run to run, so runs are not bit-identical.)

The TUN devices must exist, persistent and configured (`ip -n NS tuntap add dev DEV mode tun`,
an address, up): this process only attaches to them (setns into each namespace, TUNSETIFF),
prints "ready" on stdout, and forwards until SIGTERM/SIGINT; then, with --stats FILE, it writes
the per-direction counters (packets, bytes, lost, queue drops) there as JSON.
scripts/bench-link.sh sets the namespaces up and tests/benches/link.rs starts this per mode.

Usage:
  scripts/lossy-link.py --ns-a dsl-phone --dev-a dsl0 --ns-b dsl-srv --dev-b dsl1 \\
      [--rate 40000] [--delay 300] [--jitter 100] [--loss 0.10] [--seed 1] [--limit 1000] \\
      [--stats FILE]
  scripts/lossy-link.py --self-test      (checks the rate, delay, order and loss arithmetic)
"""

import argparse
import collections
import ctypes
import fcntl
import json
import os
import random
import select
import signal
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65536


class Direction:
    """One direction of the link: the pure arithmetic (times in seconds, no I/O)."""

    def __init__(self, rate_bps, delay_ms, jitter_ms, loss, seed, limit=1000):
        if jitter_ms > delay_ms:
            raise ValueError("jitter larger than the delay")
        self.rate = float(rate_bps)
        self.delay = delay_ms / 1000.0
        self.jitter = jitter_ms / 1000.0
        self.loss = float(loss)
        self.limit = limit
        self.rng = random.Random(seed)
        self.free_at = 0.0  # when the link has sent everything queued so far
        self.last_arrival = 0.0
        self.waiting = collections.deque()  # departure times of packets not yet sent
        self.stats = {"packets": 0, "bytes": 0, "lost": 0, "queue_drops": 0, "delivered": 0}

    def offer(self, now, size):
        """A packet of `size` bytes handed to the link at `now`: its arrival time, or None
        when it is lost (on the wire or at a full queue)."""
        self.stats["packets"] += 1
        self.stats["bytes"] += size
        while self.waiting and self.waiting[0] <= now:
            self.waiting.popleft()
        if len(self.waiting) >= self.limit:
            self.stats["queue_drops"] += 1
            return None
        start = max(now, self.free_at)
        sent = start + (size * 8.0 / self.rate if self.rate > 0 else 0.0)
        self.free_at = sent
        self.waiting.append(sent)
        # Draw both every time, so one packet's fate does not shift the next one's delay.
        lost = self.rng.random() < self.loss
        d = self.delay + self.rng.uniform(-self.jitter, self.jitter) if self.delay > 0 else 0.0
        if lost:
            self.stats["lost"] += 1
            return None
        arrival = max(sent + d, self.last_arrival)
        self.last_arrival = arrival
        self.stats["delivered"] += 1
        return arrival


def self_test():
    # Rate: 100 packets of 500 B at 40 kbit/s offered at once take 100*500*8/40000 = 10 s.
    d = Direction(40000, 0, 0, 0.0, 1)
    arrivals = [d.offer(0.0, 500) for _ in range(100)]
    assert abs(arrivals[0] - 0.1) < 1e-9, arrivals[0]
    assert abs(arrivals[-1] - 10.0) < 1e-9, arrivals[-1]
    # An idle link sends at once: a packet offered after the backlog is gone is not delayed by it.
    assert abs(d.offer(20.0, 50) - 20.01) < 1e-9
    # Delay 300 +- 100 ms, no rate: every arrival within [200, 400] ms of the offer unless held
    # behind an earlier packet; order kept; the mean close to 300 ms for spaced packets.
    d = Direction(0, 300, 100, 0.0, 7)
    last, lat = 0.0, []
    for i in range(20000):
        now = i * 1.0  # spaced: no packet is ever held behind another
        a = d.offer(now, 100)
        assert a >= last
        last = a
        assert 0.2 - 1e-9 <= a - now <= 0.4 + 1e-9, a - now
        lat.append(a - now)
    mean = sum(lat) / len(lat)
    assert abs(mean - 0.3) < 0.003, mean
    # Back-to-back packets: order kept (arrivals never decrease).
    d = Direction(40000, 300, 100, 0.0, 3)
    prev = 0.0
    for i in range(500):
        a = d.offer(i * 0.001, 60)
        assert a is not None
        assert a >= prev
        prev = a
    # Loss: 10 % independent, seeded: the same seed gives the same fates.
    fates = []
    for seed in (11, 11, 12):
        d = Direction(0, 0, 0, 0.10, seed)
        fates.append([d.offer(float(i), 100) is None for i in range(100000)])
    assert fates[0] == fates[1]
    assert fates[0] != fates[2]
    rate = sum(fates[0]) / len(fates[0])
    assert abs(rate - 0.10) < 0.005, rate
    # No loss asked: none.
    d = Direction(40000, 300, 100, 0.0, 5)
    assert all(d.offer(float(i), 1500) is not None for i in range(1000))
    # A lost packet still took its time on the link.
    d = Direction(8000, 0, 0, 1.0, 1)
    assert d.offer(0.0, 1000) is None and abs(d.free_at - 1.0) < 1e-9
    # Queue limit: beyond LIMIT waiting packets, tail drop.
    d = Direction(8000, 0, 0, 0.0, 1, limit=10)
    got = [d.offer(0.0, 1000) for _ in range(12)]
    assert got[9] is not None and got[10] is None and got[11] is None
    assert d.stats["queue_drops"] == 2
    print("lossy-link self-test: ok")


def setns(name):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns {name}: {os.strerror(e)}")
    finally:
        os.close(fd)


def open_tun(dev):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH22x", dev.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    os.set_blocking(fd, False)
    return fd


def run(args):
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns(args.ns_a)
    fa = open_tun(args.dev_a)
    setns(args.ns_b)
    fb = open_tun(args.dev_b)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns(home, CLONE_NEWNET)
    os.close(home)

    dirs = {
        fa: (Direction(args.rate, args.delay, args.jitter, args.loss, f"{args.seed}-a2b", args.limit), fb),
        fb: (Direction(args.rate, args.delay, args.jitter, args.loss, f"{args.seed}-b2a", args.limit), fa),
    }
    # Packets on their way, per output fd: deque of (arrival, bytes); arrivals never decrease.
    pending = {fa: collections.deque(), fb: collections.deque()}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    t0 = time.monotonic()
    print("ready", flush=True)
    while not stop:
        now = time.monotonic() - t0
        for out, q in pending.items():
            while q and q[0][0] <= now:
                _, pkt = q.popleft()
                try:
                    os.write(out, pkt)
                except OSError:
                    pass  # the interface is down or the packet malformed: lost
        nxt = min((q[0][0] for q in pending.values() if q), default=None)
        timeout = 0.5 if nxt is None else max(0.0, nxt - now)
        try:
            ready, _, _ = select.select([fa, fb], [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic() - t0
        for fd in ready:
            d, out = dirs[fd]
            while True:
                try:
                    pkt = os.read(fd, MAX_PACKET)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if not pkt:
                    break
                at = d.offer(now, len(pkt))
                if at is not None:
                    pending[out].append((at, pkt))
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump({"a_to_b": dirs[fa][0].stats, "b_to_a": dirs[fb][0].stats}, f)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--self-test", action="store_true")
    p.add_argument("--ns-a")
    p.add_argument("--dev-a")
    p.add_argument("--ns-b")
    p.add_argument("--dev-b")
    p.add_argument("--rate", type=float, default=40000, help="bit/s per direction; 0: no limit")
    p.add_argument("--delay", type=float, default=300, help="ms one way")
    p.add_argument("--jitter", type=float, default=100, help="+- ms, uniform")
    p.add_argument("--loss", type=float, default=0.10, help="probability per packet")
    p.add_argument("--seed", default="1")
    p.add_argument("--limit", type=int, default=1000, help="packets waiting per direction")
    p.add_argument("--stats", help="write the counters here (JSON) on exit")
    args = p.parse_args()
    if args.self_test:
        self_test()
        return
    for k in ("ns_a", "dev_a", "ns_b", "dev_b"):
        if not getattr(args, k):
            p.error(f"--{k.replace('_', '-')} is needed")
    run(args)


if __name__ == "__main__":
    sys.exit(main())
