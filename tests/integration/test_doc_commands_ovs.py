"""Every page's by-hand scenario (tests/support/doc_commands.py) run as written against
the network the page starts: its controller and config, its Mininet topology, then each
command, whose answer must be what the page's comment says.

What differs from a user's shell, all of it here: the controller runs on free ports
(OpenFlow and REST) with a state directory of its own, so `127.0.0.1:8080` becomes its
REST address and `sdn` gets it as $SDN_URL; `.venv/bin/sdn` is `python -m sdn` of this
Python (a worktree's code, not the install's); the config file is written under the
test's tmp_path; a topology whose switches dial the controller themselves (a `build`
that takes `controller_port`, the overlay's hypervisors) is given the test controller's
port; a shell line runs under `bash -e` (of `a; b`, a failing `a` fails the line); curl
gets `-w` to print the HTTP status; a command typed at Mininet's prompt runs
under `timeout` and one that should succeed is retried for a few seconds (a user types
slower than a test); what the commands started in the hosts (`&`, `iperf3 -D`) is
killed."""
import contextlib
import importlib
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mininet.util import buildTopo

from mininet_topos import harness
from tests.support import doc_commands

pytestmark = pytest.mark.integration
REPO = harness.REPO
RETRY_S = 15           # how long a Mininet command that should succeed is retried
COMMAND_TIMEOUT_S = 60
_STATUS_MARK = "\n__http_status="


def substitute(text, controller):
    """The command as this test runs it (the module docstring lists every change)."""
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{controller.rest_port}")
    text = re.sub(r"(^|;\s*)\.venv/bin/sdn\b", lambda m: f"{m.group(1)}{sys.executable} -m sdn",
                  text)
    return re.sub(r"(^|;\s*)curl ", lambda m: m.group(1) + "curl -w '" +
                  _STATUS_MARK.replace("\n", "\\n") + "%{http_code}' ", text)


def topology(line, controller):
    """The Mininet topology `mn --custom FILE --topo NAME` builds: NAME in FILE's
    `topos` dict, its arguments read as mn reads them."""
    module = importlib.import_module(line.custom.removesuffix(".py").replace("/", "."))
    topo = line.topo
    build = module.topos[topo.split(",")[0]].build
    if "controller_port" in inspect.signature(build).parameters:
        topo += f",controller_port={controller.of_port}"
    return buildTopo(module.topos, topo)


@contextlib.contextmanager
def page_network(scenario, tmp_path):
    """The page's controller (its apps and config file) and its network; both stopped,
    and what the commands started in the hosts killed, whatever happened."""
    controller = harness.Controller(scenario.controller.apps, log_dir=tmp_path)
    if scenario.config_text is not None:
        controller.config_path = tmp_path / Path(scenario.controller.config).name
        controller.config_path.write_text(scenario.config_text)
    topo = topology(scenario.topology, controller)
    # `--controller none`: the switches Mininet makes have no controller (what
    # connects to it, the topology itself sets up)
    remote = not scenario.topology.controller.startswith("none")
    try:
        controller.start()
        network = harness.Network(topo, controller if remote else None)
        network.used = set()  # the hosts commands ran in (run_mininet)
        try:
            network.start()
            controller.wait_reconciled(network)
            yield controller, network
        finally:
            for host in network.used:
                kill_started_in(host)
            network.stop()
    finally:
        controller.stop()


def kill_started_in(host):
    """SIGKILL every process in `host`'s network namespace but its shell (a host in
    the root namespace: nothing, its processes are not told apart from the machine's)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        namespace = os.readlink(f"/proc/{host.pid}/ns/net")
        if namespace == os.readlink("/proc/self/ns/net"):
            return
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == host.pid:
                continue
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/ns/net") == namespace:
                    os.kill(int(entry), signal.SIGKILL)


def run_mininet(network, text):
    """(exit status, output, loss) of a line typed at Mininet's prompt."""
    if text == "pingall":
        return None, "", network.pingall()
    if text.startswith("py "):
        names = {node.name: node for node in network.net.values()}
        value = eval(text[3:], {"net": network.net, **names})  # noqa: S307, as mn's `py`
        return 0, repr(value), None
    first, _, rest = text.partition(" ")
    node = network.net[first]
    network.used.add(node)
    # as Mininet's CLI: other nodes' names stand for their IPs
    words = [network.net[w].defaultIntf().updateIP() or w if w in network.net else w
             for w in rest.split(" ")]
    command = " ".join(words)
    if command.endswith("&"):
        node.cmd(command)
        return None, "", None
    output = node.cmd(f"timeout {COMMAND_TIMEOUT_S} {command}")
    status = int(node.cmd("echo $?").strip() or -1)
    return status, output, None


def run_shell(controller, text):
    """(exit status, output, HTTP status) of a shell line run from the repository."""
    env = dict(os.environ, SDN_URL=f"http://127.0.0.1:{controller.rest_port}")
    result = subprocess.run(["bash", "-e", "-c", substitute(text, controller)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    output, http = result.stdout, None
    if _STATUS_MARK in output:
        output, _, code = output.rpartition(_STATUS_MARK)
        http = int(code.strip() or 0)
    return result.returncode, output + result.stderr, http


def json_keys(value):
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in json_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in json_keys(v)}
    return set()


def mismatch(command, status, output, http, loss):
    """Why the answer is not what the page says, or None."""
    expect = command.expect
    if command.background:
        return None
    if expect.exit == 0 and status != 0:
        return f"exit status {status}"
    if expect.exit == "nonzero" and status == 0:
        return "exit status 0"
    if expect.loss is not None and loss != expect.loss:
        return f"{loss:g}% dropped"
    if command.kind == "shell" and command.text.startswith("curl "):
        if expect.status is not None and http != expect.status:
            return f"HTTP {http}"
        if expect.status is None and not 200 <= (http or 0) < 300:
            return f"HTTP {http}"
        if expect.keys:
            try:
                missing = set(expect.keys) - json_keys(json.loads(output))
            except ValueError:
                return "an answer that is not JSON"
            if missing:
                return f"no key(s) {', '.join(sorted(missing))} in the answer"
    return None


def run(command, controller, network):
    """(why it failed or None, output)."""
    deadline = time.monotonic() + RETRY_S
    while True:
        if command.kind == "mininet":
            status, output, loss = run_mininet(network, command.text)
            http = None
        else:
            (status, output, http), loss = run_shell(controller, command.text), None
        why = mismatch(command, status, output, http, loss)
        retry = command.kind == "mininet" and command.expect.exit != "nonzero"
        if why is None or not retry or time.monotonic() > deadline:
            return why, output
        time.sleep(0.5)


SCENARIOS = [s for s in doc_commands.scenarios() if s.page not in doc_commands.NOT_RUN]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.page for s in SCENARIOS])
def test_the_page_runs_as_written(scenario, tmp_path):
    assert not scenario.problems, "\n".join(scenario.problems)
    failures = []
    started = time.monotonic()
    with page_network(scenario, tmp_path) as (controller, network):
        for command in scenario.commands:
            why, output = run(command, controller, network)
            if why:
                tail = "\n      ".join(output.strip().splitlines()[-6:])
                failures.append(f"{command.where()}: {command.text}\n"
                                f"    expected: {command.expect.describe()}"
                                f"{' (# ' + command.comment + ')' if command.comment else ''}\n"
                                f"    observed: {why}\n      {tail}")
        problems = controller.problems()
    print(f"{scenario.page}: {len(scenario.commands)} commands in "
          f"{time.monotonic() - started:.1f} s")
    assert not failures and not problems, "\n".join(
        [f"{scenario.page}: {len(failures)} of {len(scenario.commands)} commands answered "
         "otherwise than the page says"] + failures + problems)
