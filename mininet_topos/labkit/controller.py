"""A ryu-manager we start and stop: its own process group on free ports, a log file we
read back, and REST calls to it. Which apps, config and readiness a project's
controller has is the caller's (mininet_topos/harness.py for ours)."""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RyuManager:
    """A ryu-manager subprocess on free ports, logging to a file we read back."""

    PROBE_PATH = "/"   # start() waits until a GET of this answers (any HTTP status)
    PROBLEM = re.compile(r"Traceback \(most recent call last\)")  # see problems()

    def __init__(self, apps, log_dir=None, rest_host="127.0.0.1", tls=None, cwd=None):
        self.tls = tls  # {"privkey", "cert", "ca"} file paths: OpenFlow over TLS only
        self.apps = list(apps)
        self.cwd = cwd
        self.of_port, self.rest_port = free_port(), free_port()
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="sdn-ctl-"))
        self.log_path = self.log_dir / "ryu-manager.log"
        self.rest_host = rest_host  # None: leave ryu-manager's --wsapi-host at its default
        self.of_host = None  # --ofp-listen-host; None: the controller's own (127.0.0.1)
        # the program run with ryu-manager's flags; None: this Python's ryu-manager
        # (another one takes the same command line, e.g. an installed sdn-controller)
        self.command = None
        self.process = None

    def environment(self) -> dict:
        """The environment ryu-manager runs in (a subclass adds its settings): ours, as
        a user's shell would pass it. No blanket PYTHONWARNINGS=ignore: the one noisy
        warning (eventlet's deprecation banner) is filtered where the venv's Python
        starts (controller/ryu_compat.py), and any other warning belongs in the log. Not
        pytest's PYTEST_CURRENT_TEST either: eventlet keeps quiet about locks it could
        not green when it sees it, and the log should say what a user's would."""
        env = dict(os.environ)
        env.pop("PYTEST_CURRENT_TEST", None)
        return env

    def start(self, timeout=30, probe_rest=True):
        """Start ryu-manager; wait until its REST API answers (probe_rest=False, for
        peers without it: until the OpenFlow port listens)."""
        command = self.command or [str(Path(sys.executable).parent / "ryu-manager")]
        env = self.environment()
        host = ["--wsapi-host", self.rest_host] if self.rest_host else []
        listen = ["--ofp-listen-host", self.of_host] if self.of_host else []
        listen += ["--ofp-tcp-listen-port", str(self.of_port)] if not self.tls else [
            "--ofp-ssl-listen-port", str(self.of_port), "--ctl-privkey", self.tls["privkey"],
            "--ctl-cert", self.tls["cert"], "--ca-certs", self.tls["ca"]]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*command, *listen, *host,
                 "--wsapi-port", str(self.rest_port), *self.apps],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=self.cwd, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ryu-manager exited with {self.process.returncode}:\n"
                                   + self.log_tail())
            with contextlib.suppress(OSError):
                if probe_rest:
                    self.rest("GET", self.PROBE_PATH)
                else:
                    socket.create_connection(("127.0.0.1", self.of_port), timeout=1).close()
                return self
            time.sleep(0.2)
        raise RuntimeError("ryu-manager did not come up in time:\n" + self.log_tail())

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self):
        """kill -9, as a crash would: no cleanup of any kind."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def rest(self, method, path, body=None, timeout=10):
        """(status, decoded JSON) for a REST call (text for a reply that is not JSON);
        HTTP errors are returned, not raised."""
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        request = urllib.request.Request(f"http://127.0.0.1:{self.rest_port}{path}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                raw = reply.read()
                if not reply.headers.get_content_type().endswith("json"):
                    return reply.status, raw.decode(errors="replace")
                return reply.status, json.loads(raw or b"null")
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, raw.decode(errors="replace")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines=40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def problems(self):
        """Log lines matching PROBLEM (a traceback; a subclass adds its own marks)."""
        return [line for line in self.log_text().splitlines() if self.PROBLEM.search(line)]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
