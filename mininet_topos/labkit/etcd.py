"""A real etcd for tests and labs: Debian's `etcd` binary (make setup installs it) on
free ports of 127.0.0.1 with its data dir in a directory the caller owns; one member or
a cluster of several on this machine. No systemd here, so the caller starts it and
`running()` / `running_cluster()` kill it, whatever happened."""
import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import time

import requests

from mininet_topos.labkit.controller import free_port


def encode(text: str) -> str:
    """etcd's JSON gateway wants keys and values in base64."""
    return base64.b64encode(text.encode()).decode()


def decode(value: str) -> str:
    return base64.b64decode(value).decode()


ETCD = "etcd"


def make_tls(directory):
    """A CA, a certificate for etcd on 127.0.0.1 and one for a controller node (openssl):
    {"ca", "server", "server_key", "node", "node_key"} -> file paths."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ext.cnf").write_text("[ext]\nsubjectAltName = IP:127.0.0.1\n"
                                       "extendedKeyUsage = serverAuth, clientAuth\n")
    paths = {name: str(directory / f"{name}.pem") for name in
             ("ca", "ca_key", "server", "server_key", "node", "node_key")}

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=sdn-test-ca", "-keyout", paths["ca_key"], "-out", paths["ca"])
    for name in ("server", "node"):
        csr = str(directory / f"{name}.csr")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout",
                paths[f"{name}_key"], "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", paths["ca"], "-CAkey", paths["ca_key"],
                "-CAcreateserial", "-days", "2", "-out", paths[name],
                "-extfile", str(directory / "ext.cnf"), "-extensions", "ext")
    return paths


class EtcdServer:
    def __init__(self, directory, name="sdn-test", tls=None):
        """`tls`: make_tls()'s files: clients must then show a certificate of its CA."""
        self.directory, self.name, self.tls = directory, name, tls
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.client_port}"
        self.peer_url = f"http://127.0.0.1:{self.peer_port}"
        self.log_path = directory / "etcd.log"
        self.process = None
        self.initial_cluster = f"{name}={self.peer_url}"   # running_cluster() lists all

    def start(self, timeout=15):
        self.launch()
        return self.wait_healthy(timeout)

    def launch(self):
        args = [ETCD, "--name", self.name, "--data-dir", str(self.directory / "data"),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.initial_cluster,
                # one token per test cluster: members of another never join this one
                "--initial-cluster-token", "sdn-test-" + re.sub(r"\W", "-",
                                                                self.initial_cluster)]
        if self.tls:
            args += ["--cert-file", self.tls["server"], "--key-file", self.tls["server_key"],
                     "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")   # noqa: SIM115 -- the child keeps it open
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()

    def wait_healthy(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited at start: {self.log_tail()}")
            try:
                if b'"true"' in self._get("/health"):
                    return self
            except (OSError, requests.RequestException):
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

    def _tls_args(self):
        if not self.tls:
            return {}
        return {"verify": self.tls["ca"], "cert": (self.tls["node"], self.tls["node_key"])}

    def _get(self, path):
        return requests.get(self.url + path, timeout=1, **self._tls_args()).content

    def _post(self, path, body):
        answer = requests.post(self.url + path, json=body, timeout=5, **self._tls_args())
        answer.raise_for_status()
        return answer.json()

    def stored(self, key):
        """The JSON value of `key`, read straight from etcd (None: no such key)."""
        kvs = self._post("/v3/kv/range", {"key": encode(key)}).get("kvs")
        return None if not kvs else json.loads(decode(kvs[0]["value"]))

    def is_leader(self):
        status = self._post("/v3/maintenance/status", {})
        return status["leader"] == status["header"]["member_id"]

    def compact(self, revision):
        self._post("/v3/kv/compaction", {"revision": revision})

    def log_tail(self, lines=20):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def running(directory, name="sdn-test", tls=None):
    server = EtcdServer(directory, name, tls)
    try:
        yield server.start()
    finally:
        server.kill()


@contextlib.contextmanager
def running_cluster(directory, size=3):
    """`size` members on this machine, one cluster; every member killed at the end."""
    members = [EtcdServer(directory / f"m{n}", f"m{n}") for n in range(1, size + 1)]
    everyone = ",".join(f"{m.name}={m.peer_url}" for m in members)
    try:
        for member in members:
            member.initial_cluster = everyone
            member.launch()
        for member in members:
            member.wait_healthy()
        yield members
    finally:
        for member in members:
            member.kill()
