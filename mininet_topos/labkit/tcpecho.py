"""A host-side script: one long-lived TCP connection and when its echoes came back, to
show a firewall cutting (and letting live again) a connection that was allowed.

    python3 tcpecho.py serve PORT                      echo every byte back, forever
    python3 tcpecho.py talk IP PORT SECONDS INTERVAL   one connection; a byte every
                                                       INTERVAL s; prints a JSON line:
                                                       {"echoes": [Unix times]}

Only the standard library: it runs inside Mininet hosts with the system python3.
"""
import json
import select
import socket
import sys
import threading
import time


def serve(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(16)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def echo(conn):
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            conn.sendall(data)


def talk(ip, port, seconds, interval):
    start = time.monotonic()
    echoes = []
    conn = socket.create_connection((ip, port), timeout=5)
    conn.setblocking(False)
    next_send = start
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now >= next_send:
            try:
                conn.send(b"x")
            except (BlockingIOError, OSError):
                pass    # the send buffer is full while the firewall drops: keep timing
            next_send += interval
        ready, _, _ = select.select([conn], [], [], max(0.0, min(0.05, next_send - now)))
        if ready:
            try:
                data = conn.recv(4096)
            except OSError:
                break
            if not data:
                break
            echoes += [round(time.time(), 3)] * len(data)   # the caller's clock too
    print(json.dumps({"echoes": echoes}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        talk(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
