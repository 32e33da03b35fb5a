"""This project's controller in the lab kit (mininet_topos/labkit/): ryu-manager with
our apps, config file and state directory, and what knows those apps: when each has
reconciled a network's switches, when the VLAN and QoS apps are programmed, OVS's own
VLANs as the reference our VLAN app is compared with, and `running()` (a controller and
a network, both stopped whatever happened).

Used by the integration tests, the labs, the demo and the benchmarks. The kit's generic
names are re-exported here, so `from mininet_topos import harness` gives both; what
is generic lives (and is documented) in labkit. Nothing else on the machine is touched
(no global `mn -c`).
"""
import contextlib
import json
import re
import subprocess
from pathlib import Path

from mininet_topos.labkit.capture import Capture, CaptureLost, capture_stats  # noqa: F401
from mininet_topos.labkit.controller import RyuManager, free_port  # noqa: F401
from mininet_topos.labkit.network import (  # noqa: F401
    ListeningController, Network, RstpOVSSwitch, StandaloneOVSSwitch, ethernet_frame,
    inter_switch_interfaces, ping, send_frames)
from mininet_topos.labkit.ovs import (  # noqa: F401
    OVS_CTL, VSWITCHD_PIDFILE, ensure_ovs, ensure_vswitchd, ovs_running, recreate_bridge,
    restart_vswitchd)
from mininet_topos.labkit.traffic import (  # noqa: F401
    HTTPLOAD, http_requests, iperf3, mean_rate, start_http, udp_streams)
from mininet_topos.labkit.waits import wait_until

REPO = Path(__file__).resolve().parents[1]
OFP_ERROR_MARK = "OpenFlow error from switch"  # logged by controller.southbound.SdnApp
_PROBLEM = re.compile(r"Traceback \(most recent call last\)|" + re.escape(OFP_ERROR_MARK))


class Controller(RyuManager):
    """ryu-manager with our apps (paths relative to the repository), our config file
    ($SDN_CONFIG) and a state directory of its own ($SDN_STATE_DIR)."""

    PROBE_PATH = "/v1/switches"
    PROBLEM = _PROBLEM  # a traceback or an OpenFlow error from a switch

    def __init__(self, apps=("apps/l2_switch.py",), config=None, log_dir=None,
                 rest_host="127.0.0.1", tls=None):
        super().__init__([str(REPO / a) if a.endswith(".py") else a for a in apps],
                         log_dir=log_dir, rest_host=rest_host, tls=tls, cwd=REPO)
        self.config_path = None
        if config is not None:
            self.set_config(config)
        self.state_dir = self.log_dir / "state"  # REST changes persist here across restarts

    def set_config(self, config):
        """The config file the next start() uses."""
        self.config_path = self.log_dir / "sdn.yaml"
        self.config_path.write_text(json.dumps(config))  # JSON is YAML

    def environment(self) -> dict:
        env = dict(super().environment(), SDN_STATE_DIR=str(self.state_dir))
        if self.config_path:
            env["SDN_CONFIG"] = str(self.config_path)
        return env

    def reconciled_switches(self):
        """Datapath ids (16 hex digits) of the connected switches every app has
        reconciled or left alone, as the controller says (GET /v1/runtime/switches)."""
        try:
            status, switches = self.rest("GET", "/v1/runtime/switches", timeout=2)
        except OSError:
            return set()
        if status != 200:
            return set()
        return {entry["dpid"] for entry in switches if entry["reconciled"]}

    def wait_reconciled(self, network, timeout=10):
        """Until every app has reconciled every switch of `network` the controller
        manages (a standalone switch forwards by itself): OVS says a switch is connected
        before the apps have installed anything (with fail_mode secure it forwards
        nothing until then). Gives up quietly after `timeout` (a test then sees what is
        missing)."""
        wanted = {switch.dpid for switch in network.switches
                  if getattr(switch, "failMode", "secure") != "standalone"}
        wait_until(lambda: wanted <= self.reconciled_switches(), timeout, step=0.05)


def apply_ovs_port_vlans(network, config):
    """Configure the `vlan` section of our config as OVS's *own* port VLANs (tag, trunks,
    vlan_mode) on a controller-less network: the reference our apps are compared with.
    Switches by bridge name or dpid, ports by interface name or OpenFlow number."""
    for entry in config["vlan"]["ports"]:
        switch = next(s for s in network.switches
                      if entry["switch"] in (s.name, int(s.dpid, 16)))
        port = next(i.name for i in switch.intfList()
                    if entry["port"] in (i.name, switch.ports.get(i)))
        args = ["ovs-vsctl", "set", "port", port]
        if "tag" in entry:
            args.append(f"tag={entry['tag']}")
        if "trunks" in entry:
            args.append("trunks=" + ",".join(map(str, entry["trunks"])))
        if "native_mode" in entry:
            args.append(f"vlan_mode={entry['native_mode']}")
        subprocess.run(args, check=True, capture_output=True)


def wait_vlans_programmed(controller, network, timeout=20):
    """Until the VLAN app has programmed every switch (GET /v1/vlans lists their ports)."""
    def programmed():
        members = controller.rest("GET", "/v1/vlans")[1]
        return isinstance(members, dict) and {m["dpid"] for ms in members.values()
                                              for m in ms} == {s.dpid for s in network.switches}
    if not wait_until(programmed, timeout):
        raise RuntimeError("the VLAN app did not program every switch in time")


def wait_qos_ready(controller, timeout=20):
    """Until the QoS app reports its first switch's HTB trees as OVSDB describes them
    with its classifier on; returns that switch's GET /v1/qos entry."""
    def ready():
        status, body = controller.rest("GET", "/v1/qos")
        return status == 200 and body and body[0]["tc_applied"] >= 1 and \
            all(p.get("tc_problems") == [] for p in body[0]["ports"] if "queues" in p)
    if not wait_until(ready, timeout):
        raise RuntimeError(f"the QoS app did not build its trees in time: "
                           f"{controller.rest('GET', '/v1/qos')}")
    return controller.rest("GET", "/v1/qos")[1][0]


@contextlib.contextmanager
def running(topo, apps=("apps/l2_switch.py",), config=None, tls=None):
    """A controller and a network, both stopped on exit whatever happened. `topo` may
    be a function of the controller (a topology that must know its OpenFlow port),
    `config` a function of the topology; `tls` see Controller (OVS needs `set-ssl`)."""
    controller = Controller(apps, None if callable(config) else config, tls=tls)
    if callable(topo):
        topo = topo(controller)
    # a topology whose switches reach the controller over a network of its own (the
    # overlay's management network, made only when the network starts) says where
    controller.of_host = getattr(topo, "CONTROLLER_LISTEN_HOST", controller.of_host)
    if callable(config):
        controller.set_config(config(topo))
    try:
        controller.start()
        network = Network(topo, controller)
        try:
            network.start()
            controller.wait_reconciled(network)
            yield controller, network
        finally:
            network.stop()
    finally:
        controller.stop()
