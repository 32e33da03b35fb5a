"""Traffic between Mininet hosts, measured where it arrives: iperf3 TCP and UDP
streams, and HTTP over httpload.py (a host-side script of this package, as is
udpcount.py)."""
import json
import subprocess
from pathlib import Path

from mininet_topos.labkit.waits import wait_until


def iperf3(client, server, seconds=2, port=5201) -> float:
    """TCP throughput client -> server in bit/s (receiver side)."""
    listening = lambda: f":{port} " in server.cmd("ss -ltnH")  # noqa: E731
    wait_until(lambda: not listening(), 5)  # a previous one-off server may still be closing
    server.cmd(f"iperf3 -s -1 -D -p {port}")
    wait_until(listening, 5, step=0.1)
    out = client.cmd(f"iperf3 -c {server.IP()} -p {port} -t {seconds} -J")
    try:
        result = json.loads(out)
        return float(result["end"]["sum_received"]["bits_per_second"])
    except (ValueError, KeyError) as err:
        raise RuntimeError(f"iperf3 failed: {out[-500:]}") from err


def udp_streams(receiver, streams, rate="20M", interval=0.5, length=1400, base_port=5301):
    """iperf3 UDP streams into `receiver`, measured where they arrive. `streams` is
    [(sender, start_s, seconds)]; returns per stream [(t, bit/s)] for each interval,
    t being its end in seconds since the first stream started. Rates are UDP payload."""
    ports = [base_port + i for i in range(len(streams))]
    servers = [receiver.popen(["iperf3", "-s", "-1", "-p", str(port), "-J", "-i", str(interval)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for port in ports]
    try:
        listening = lambda: all(f":{p} " in receiver.cmd("ss -ltn") for p in ports)  # noqa: E731
        if not wait_until(listening, 5, step=0.1):
            raise RuntimeError("iperf3 servers did not start")
        clients = [sender.popen(["sh", "-c", f"sleep {start}; exec iperf3 -u -b {rate} "
                                 f"-l {length} -t {seconds} -c {receiver.IP()} -p {port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for (sender, start, seconds), port in zip(streams, ports)]
        for client, (_, start, seconds) in zip(clients, streams):
            out, _ = client.communicate(timeout=start + seconds + 20)
            if client.returncode != 0:
                raise RuntimeError(f"iperf3 client failed: {out[-500:]}")
        results = []
        for server, (_, start, _) in zip(servers, streams):
            out, _ = server.communicate(timeout=20)
            try:
                intervals = json.loads(out)["intervals"]
            except (ValueError, KeyError) as err:
                raise RuntimeError(f"iperf3 server output unreadable: {out[-500:]}") from err
            results.append([(round(start + i["sum"]["end"], 2), i["sum"]["bits_per_second"])
                            for i in intervals if i["sum"]["seconds"] >= interval / 2])
        return results
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()


HTTPLOAD = Path(__file__).resolve().with_name("httpload.py")


def start_http(host, name, port=8080):
    """A tiny HTTP server on `host` answering every GET with `name`; stop with .kill()."""
    proc = host.popen(["python3", str(HTTPLOAD), "serve", name, str(port)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_until(lambda: f":{port} " in host.cmd("ss -ltn"), 5, step=0.1):
        proc.kill()
        raise RuntimeError(f"HTTP server on {host.name}:{port} did not start")
    return proc


def http_requests(client, ip, port, count, pause=0.0):
    """`count` GETs from `client`, each on a new connection: {"served": {name: n},
    "failed": n}."""
    out = client.cmd(f"python3 {HTTPLOAD} get {ip} {port} {count} {pause}")
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as err:
        raise RuntimeError(f"HTTP client on {client.name} failed: {out[-500:]}") from err


def mean_rate(samples, skip=1.0):
    """Mean bit/s of (t, bit/s) samples after the first `skip` seconds of the stream
    (the start is a burst: HTB and meters hand out their buckets' tokens first)."""
    first = samples[0][0] - (samples[1][0] - samples[0][0] if len(samples) > 1 else 0)
    steady = [rate for t, rate in samples if t > first + skip + 1e-6] or [r for _, r in samples]
    return sum(steady) / len(steady)
