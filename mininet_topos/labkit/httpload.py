"""Tiny HTTP tools for the load-balancer lab, run inside Mininet hosts with the system
Python (standard library only):

    python3 httpload.py serve NAME PORT           answer every GET with NAME
    python3 httpload.py get IP PORT N [PAUSE_S]   N requests, each on a new connection
                                                  (so a new source port); prints JSON
                                                  {"served": {name: count}, "failed": n}
    python3 httpload.py stream-serve PORT         send zeros to whoever connects
    python3 httpload.py stream-get IP PORT N S    N connections read for S seconds; prints
                                                  {"bytes": [[per second] per connection],
                                                   "errors": [..]}
"""
import http.client
import http.server
import json
import socket
import socketserver
import sys
import threading
import time


def serve(name, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("", port), Handler).serve_forever()


def get(ip, port, count, pause=0.0):
    served, failed = {}, 0
    for _ in range(count):
        try:
            conn = http.client.HTTPConnection(ip, port, timeout=2)
            conn.request("GET", "/")
            name = conn.getresponse().read().decode()
            conn.close()
            served[name] = served.get(name, 0) + 1
        except OSError:
            failed += 1
        if pause:
            time.sleep(pause)
    print(json.dumps({"served": served, "failed": failed}))


def stream_serve(port):
    """Long streams paced at about 1.6 MB/s each: what is tested is that they keep
    flowing, and unpaced streams would saturate a 2-core machine's userspace switch
    (the controller's health probes then starve too)."""
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            chunk = bytes(16384)
            try:
                while True:
                    self.request.sendall(chunk)
                    time.sleep(0.01)
            except OSError:
                pass

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer(("", port), Handler).serve_forever()


def stream_get(ip, port, count, seconds):
    counts = [[0] * seconds for _ in range(count)]
    errors = []

    def read(index):
        try:
            sock = socket.create_connection((ip, port), timeout=3)
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < seconds:
                data = sock.recv(65536)
                if not data:
                    raise OSError("closed by the server")
                counts[index][int(elapsed)] += len(data)
            sock.close()
        except OSError as err:
            errors.append(f"connection {index}: {err}")

    threads = [threading.Thread(target=read, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"bytes": counts, "errors": errors}))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "stream-serve":
        stream_serve(int(sys.argv[2]))
    elif sys.argv[1] == "stream-get":
        stream_get(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        get(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
            float(sys.argv[5]) if len(sys.argv) > 5 else 0.0)
