"""Loss, counted: numbered UDP datagrams by sequence number where they arrive, and pings.

iperf3 reports rates; it cannot say which datagrams of a slow stream were lost. Run
inside Mininet hosts (plain python3, no project imports):

    python3 udpcount.py recv PORT IDLE_SECONDS      -> one JSON line {"seen": [...]}
    python3 udpcount.py send IP PORT COUNT PER_SECOND LENGTH -> one JSON line {"sent": n}

The sender paces by the clock (datagram i leaves at i / PER_SECOND seconds), so a
stream at 2000/s is 2000/s on average, not a burst; the receiver stops IDLE_SECONDS
after the last datagram (or after 3 * IDLE_SECONDS when none came).
"""
import json
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HEADER = struct.Struct("!I")
SCRIPT = str(Path(__file__).resolve())


def receive(port, idle):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    print(json.dumps({"listening": port}), flush=True)
    seen = set()
    sock.settimeout(3 * idle)
    try:
        while True:
            data = sock.recv(65535)
            if len(data) >= HEADER.size:
                seen.add(HEADER.unpack_from(data)[0])
            sock.settimeout(idle)
    except socket.timeout:
        pass
    print(json.dumps({"seen": sorted(seen)}), flush=True)


def send(ip, port, count, per_second, length):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    padding = bytes(max(0, length - HEADER.size))
    start, errors = time.monotonic(), 0
    for seq in range(count):
        delay = start + seq / per_second - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            sock.sendto(HEADER.pack(seq) + padding, (ip, port))
        except OSError:
            errors += 1   # e.g. ENOBUFS from the sender's own qdisc: counted, not fatal
    print(json.dumps({"sent": count - errors, "errors": errors,
                      "seconds": round(time.monotonic() - start, 3)}), flush=True)


# Datagrams for the check of all three queues at once: at 2000/s each, 120 bytes (162
# on the wire) make 2.6 Mbit/s a stream and 7.8 of the port's 10 together, so every
# queue's share fits and nothing need be dropped. 200 bytes made 11.6 Mbit/s: more than
# the port carries, so the leaves overflowed by design (94 of 100 seen in CI).
ALL_QUEUES_LENGTH = 120


def numbered(receiver, streams, length=200, base_port=5401, idle=1.0):
    """Numbered datagrams into the Mininet host `receiver`, all streams at once:
    `streams` is [(sender, count, per_second)], each to its own UDP port from
    `base_port` on. Returns per stream (sorted sequence numbers that arrived, the
    sender's report {"sent", "errors", "seconds"})."""
    ports = [base_port + i for i in range(len(streams))]
    servers = [receiver.popen(["python3", SCRIPT, "recv", str(port), str(idle)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for port in ports]
    try:
        for server in servers:
            if "listening" not in server.stdout.readline():
                raise RuntimeError(f"udpcount receiver did not start: {server.stderr.read()}")
        senders = [sender.popen(["python3", SCRIPT, "send", receiver.IP(), str(port),
                                 str(count), str(per_second), str(length)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for (sender, count, per_second), port in zip(streams, ports)]
        longest = max(count / per_second for _, count, per_second in streams)
        results = []
        for sender, server in zip(senders, servers):
            out, _ = sender.communicate(timeout=longest + 20)
            try:
                report = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise RuntimeError(f"udpcount sender failed: {out[-500:]}") from None
            out, _ = server.communicate(timeout=10 * idle + 10)
            results.append((json.loads(out.strip().splitlines()[-1])["seen"], report))
        return results
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()


def ping_received(src, dst, count=50, interval=0.02) -> int:
    """How many of `count` pings from `src` to `dst` (Mininet hosts) were answered."""
    out = src.cmd(f"ping -q -c {count} -i {interval} -W 1 {dst.IP()}")
    found = re.search(r"(\d+) received", out)
    if not found:
        raise RuntimeError(f"ping from {src.name} failed: {out[-300:]}")
    return int(found.group(1))


def main(argv):
    if argv[:1] == ["recv"] and len(argv) == 3:
        receive(int(argv[1]), float(argv[2]))
    elif argv[:1] == ["send"] and len(argv) == 6:
        send(argv[1], int(argv[2]), int(argv[3]), float(argv[4]), int(argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
