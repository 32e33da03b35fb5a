"""The host's Open vSwitch: is it running, start it, crash and restart ovs-vswitchd,
recreate a bridge empty. Touches only what a test names (no global cleanup)."""
import subprocess
from pathlib import Path

from mininet_topos.topos import kill_9


def ovs_running() -> bool:
    return subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode == 0


def ensure_ovs():
    if not ovs_running():
        subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "start"], check=True,
                       capture_output=True)
    if not ovs_running():
        raise RuntimeError("Open vSwitch is not running and ovs-ctl could not start it")


def recreate_bridge(name):
    """Delete bridge `name` and add it back as it was (type, datapath id, fail mode,
    protocols, controller, ports with their OpenFlow numbers) but empty: what an OVS
    that lost its datapath, or an admin's del-br/add-br, does to a switch."""
    def vsctl(*args):
        return subprocess.run(["ovs-vsctl", *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    columns = {c: vsctl("get", "Bridge", name, c)
               for c in ("datapath_type", "other_config", "fail_mode", "protocols")}
    ports = {p: vsctl("get", "Interface", p, "ofport") for p in vsctl("list-ports", name).split()}
    target = vsctl("get-controller", name)
    vsctl("del-br", name)
    args = ["add-br", name, "--", "set", "Bridge", name,
            *[f"{c}={v}" for c, v in columns.items() if v not in ("[]", "{}")]]
    for port, number in ports.items():
        args += ["--", "add-port", name, port, "--", "set", "Interface", port,
                 f"ofport_request={number}"]
    vsctl(*args, "--", "set-controller", name, *target.split())


OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
VSWITCHD_PIDFILE = Path("/var/run/openvswitch/ovs-vswitchd.pid")


def restart_vswitchd(timeout=30):
    """kill -9 the host's ovs-vswitchd and start it again (ovsdb-server keeps running):
    a crash. The new daemon builds every bridge from OVSDB with empty flow tables,
    opens the ports again and reconnects to the controllers."""
    kill_9(int(VSWITCHD_PIDFILE.read_text().strip()), timeout)
    ensure_vswitchd(timeout)


def ensure_vswitchd(timeout=30):
    """Start ovs-vswitchd unless it runs (what a test that killed it leaves behind)."""
    running = subprocess.run([OVS_CTL, "status"], capture_output=True, text=True)
    if "ovs-vswitchd is running" not in running.stdout:
        subprocess.run([OVS_CTL, "--no-ovsdb-server", "start"], capture_output=True,
                       text=True, check=True, timeout=timeout)
