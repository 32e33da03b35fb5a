"""A real single-member etcd for tests: Debian's `etcd` binary (make setup installs it)
on free ports of 127.0.0.1 with its data dir in a directory the test owns. No systemd
here, so the test starts it and `running()` kills it, whatever happened."""
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request

import requests

from controller.etcd_client import decode, encode
from mininet_topos.labkit.controller import free_port

ETCD = "etcd"


class EtcdServer:
    def __init__(self, directory, name="sdn-test"):
        self.directory, self.name = directory, name
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.peer_url = f"http://127.0.0.1:{self.peer_port}"
        self.log_path = directory / "etcd.log"
        self.process = None

    def start(self, timeout=15):
        args = [ETCD, "--name", self.name, "--data-dir", str(self.directory / "data"),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", f"{self.name}={self.peer_url}",
                "--initial-cluster-token", f"{self.name}-{self.client_port}"]
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")   # noqa: SIM115 -- the child keeps it open
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited at start: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as answer:
                    if b'"true"' in answer.read():
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"etcd did not become healthy in {timeout} s: {self.log_tail()}")

    def kill(self):
        """kill -9 (what a crash does); nothing to do when it is not running."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stored(self, key):
        """The JSON value of `key`, read straight from etcd (None: no such key)."""
        answer = requests.post(self.url + "/v3/kv/range", json={"key": encode(key)},
                               timeout=5).json()
        kvs = answer.get("kvs")
        return None if not kvs else json.loads(decode(kvs[0]["value"]))

    def compact(self, revision):
        requests.post(self.url + "/v3/kv/compaction", json={"revision": revision},
                      timeout=5).raise_for_status()

    def log_tail(self, lines=20):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def running(directory, name="sdn-test"):
    server = EtcdServer(directory, name)
    try:
        yield server.start()
    finally:
        server.kill()
