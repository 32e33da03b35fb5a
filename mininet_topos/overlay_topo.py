"""The overlay lab's network: N "hypervisors" joined by a real IP underlay.

    sudo mn --custom mininet_topos/overlay_topo.py --topo overlay,3 --controller none
    (then run ryu-manager apps/overlay.py with OverlayLab.app_config(); see docs/tutorials/overlay.md)

Each hypervisor is a network namespace running its *own* ovsdb-server and
ovs-vswitchd (userspace datapath), as a real hypervisor runs its own OVS:
- br-int (VM ports, the patch port `patch-tun` = ofport 100) and br-tun (the patch
  port `patch-int` = ofport 1, tunnel ports created by the controller), both
  OpenFlow 1.3 with fail_mode secure, connected to the controller over a
  management network (10.254.0.0/24, the controller side is 10.254.0.254);
- br-u holds the underlay interface and the VTEP address 192.168.50.N on its LOCAL
  port, where OVS's native tunnelling wants it; the underlay MTU is 1600 so a
  1500-byte VM frame fits in VXLAN.
Why not one ovs-vswitchd for all hypervisors: there every VTEP address is local, so
OVS routes tunnel traffic to the wrong bridge, and two tunnel bridges cannot both
have a port with the same remote_ip ("same config as port ..."). The pkt_mark
trick in the platform notes works for two hypervisors, not three. With one OVS per
namespace, routing is the plain kernel's and VXLAN uses UDP 4789 as on real hosts.

The controller reaches each hypervisor's OVSDB through its unix socket (the file
system is shared between namespaces): OverlayLab.ovsdb_remote(name).
"""
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mininet.node import Host, OVSSwitch
from mininet.topo import Topo

try:
    from mininet_topos.topos import DatapathAware, OffloadOffHost, kill_9
except ImportError:  # `mn --custom` execs this file under the system Python
    _here = Path(inspect.currentframe().f_code.co_filename).resolve()
    sys.path.insert(0, str(_here.parents[1]))
    from mininet_topos.topos import DatapathAware, OffloadOffHost, kill_9

MGMT_NET = "10.254.0"
CONTROLLER_IP = f"{MGMT_NET}.254"
UNDERLAY_NET = "192.168.50"
UNDERLAY_MTU = 1600
PATCH_ON_INT, PATCH_ON_TUN = 100, 1
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


def int_dpid(number):
    return 0x1000 + number


def tun_dpid(number):
    return 0x2000 + number


class PlainSwitch(OVSSwitch):
    """A switch with no controller (OVS NORMAL); `local_ip` goes on its LOCAL port so
    the root namespace (where the controller runs) is on that network."""

    def __init__(self, name, local_ip=None, **params):
        params["failMode"] = "standalone"
        super().__init__(name, **params)
        self.local_ip = local_ip

    def start(self, controllers):
        super().start([])

    @classmethod
    def batchStartup(cls, switches, **kwargs):
        started = super().batchStartup(switches, **kwargs)
        for switch in switches:   # the LOCAL device exists once the bridge does
            if switch.local_ip:
                subprocess.run(["ip", "addr", "replace", switch.local_ip, "dev", switch.name],
                               check=True)
                subprocess.run(["ip", "link", "set", switch.name, "up"], check=True)
        return started


class Hypervisor(Host):
    """A namespace with its own Open vSwitch: br-int, br-tun and br-u (see module doc).
    Interface 0 is management, 1 the underlay, 2.. the VMs (br-int ofport = that number)."""

    def config(self, number=1, rundir=None, controller_port=6653, **params):
        result = super().config(**params)
        self.number = number
        self.rundir = Path(rundir or tempfile.mkdtemp(prefix=f"sdn-{self.name}-"))
        shutil.rmtree(self.rundir, ignore_errors=True)
        self.rundir.mkdir(parents=True)
        self._start_ovs()
        self._bridges(f"tcp:{CONTROLLER_IP}:{controller_port}")
        return result

    def ovsdb_remote(self):
        return f"unix:{self.rundir}/db.sock"

    def vsctl(self, *args):
        return self._run("ovs-vsctl", f"--db={self.ovsdb_remote()}", "--timeout=10", *args)

    def ofctl(self, *args):
        """ovs-ofctl against this hypervisor's own vswitchd, OpenFlow 1.3."""
        return self._run("ovs-ofctl", "-O", "OpenFlow13", *args)

    def dump_flows(self, bridge, table=None):
        """The entries' lines as ovs-ofctl prints them (flows() reads them)."""
        return [flow.text for flow in self.flows(bridge, table)]

    def flows(self, bridge, table=None):
        """The bridge's entries (of `table`), parsed: flowdump.Flow values."""
        # imported here: `mn --custom` loads this file with Debian's Python, which may
        # lack OVS's Python package; only the tests and labs call this
        from mininet_topos.labkit import flowdump
        return flowdump.parse(self.ofctl("dump-flows", bridge,
                                         *([f"table={table}"] if table is not None else [])))

    def _run(self, *args):
        # every OVS tool and daemon here uses this hypervisor's run directory (the
        # bridges' .mgmt sockets would clash with the host OVS's otherwise)
        out, err, code = self.pexec("env", f"OVS_RUNDIR={self.rundir}", *args)
        if code != 0:
            raise RuntimeError(f"{self.name}: {' '.join(args)}: {err or out}")
        return out

    def _start_ovs(self):
        d = self.rundir
        subprocess.run(["ovsdb-tool", "create", str(d / "conf.db"), SCHEMA], check=True)
        self._run("ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d}/db.sock",
                  f"--pidfile={d}/ovsdb-server.pid", f"--unixctl={d}/ovsdb-server.ctl",
                  f"--log-file={d}/ovsdb-server.log", "--no-chdir", "--detach")
        self.vsctl("--no-wait", "init")
        self._start_vswitchd()

    def _start_vswitchd(self):
        d = self.rundir
        self._run("ovs-vswitchd", self.ovsdb_remote(), f"--pidfile={d}/ovs-vswitchd.pid",
                  f"--unixctl={d}/ovs-vswitchd.ctl", f"--log-file={d}/ovs-vswitchd.log",
                  "--no-chdir", "--detach")

    def restart_vswitchd(self, timeout=10):
        """kill -9 this hypervisor's ovs-vswitchd and start it again, as after a crash:
        it builds its bridges again from OVSDB with empty flow tables and reconnects to
        the controller. br-u's device is new, so the underlay address goes back on it
        (the host's network configuration, not OVS's, owns that address)."""
        kill_9(int((self.rundir / "ovs-vswitchd.pid").read_text().strip()), timeout)
        self._start_vswitchd()
        self._underlay_address()

    def _bridges(self, controller):
        intfs = {self.ports[intf]: intf.name for intf in self.intfList() if intf.name != "lo"}
        underlay = intfs[1]
        # OpenFlow and OVSDB traffic crosses the host OVS's userspace datapath, which
        # does not complete partial checksums: TCP to the controller needs them full
        self._run("ethtool", "-K", intfs[0], "tx", "off")
        for intf in (self.intf(underlay), self.intf(underlay).link.intf2):
            intf.cmd("ip link set", intf.name, "mtu", UNDERLAY_MTU)   # each in its namespace
        self.vsctl("add-br", "br-u", "--", "set", "bridge", "br-u", "datapath_type=netdev",
                   "fail_mode=standalone", "--", "add-port", "br-u", underlay)
        self._underlay_address()
        for bridge, dpid in (("br-int", int_dpid(self.number)), ("br-tun", tun_dpid(self.number))):
            self.vsctl("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
                       "fail_mode=secure", "protocols=OpenFlow13",
                       f"other-config:datapath-id={dpid:016x}")
        self.vsctl("add-port", "br-int", "patch-tun", "--", "set", "interface", "patch-tun",
                   "type=patch", "options:peer=patch-int", f"ofport_request={PATCH_ON_INT}",
                   "--", "add-port", "br-tun", "patch-int", "--", "set", "interface",
                   "patch-int", "type=patch", "options:peer=patch-tun",
                   f"ofport_request={PATCH_ON_TUN}")
        for port, name in sorted(intfs.items()):
            if port >= 2:
                self.vsctl("add-port", "br-int", name, "--", "set", "interface", name,
                           f"ofport_request={port}")
        self.vsctl("set-controller", "br-int", controller, "--", "set-controller", "br-tun",
                   controller)

    def _underlay_address(self):
        self._run("ip", "addr", "replace", f"{UNDERLAY_NET}.{self.number}/24", "dev", "br-u")
        self._run("ip", "link", "set", "br-u", "mtu", str(UNDERLAY_MTU), "up")

    def terminate(self):
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            pidfile = getattr(self, "rundir", Path("/nonexistent")) / f"{daemon}.pid"
            try:
                os.kill(int(pidfile.read_text().strip()), 15)
            except (OSError, ValueError):
                pass
        super().terminate()
        if getattr(self, "rundir", None):
            shutil.rmtree(self.rundir, ignore_errors=True)


class QuietVm(OffloadOffHost):
    """A VM without IPv6, so the only traffic in the lab is what the tests send
    (IPv6 neighbour discovery and MLD would cross the tunnels on their own)."""

    def config(self, **params):
        result = super().config(**params)
        for key in ("all", "default"):
            self.cmd(f"sysctl -qw net.ipv6.conf.{key}.disable_ipv6=1")
        return result


class OverlayLab(DatapathAware, Topo):
    """`hypervisors` hypervisors (hv1..), and on each one VM per tenant: vm<N><tenant
    letter>, e.g. vm1a (tenant a, VNI 100) and vm1b (tenant b, VNI 200). A VM's IP
    is 10.0.0.N in every tenant: tenants may reuse addresses."""

    TENANTS = (("a", 100), ("b", 200))
    # The hypervisors' bridges reach the controller over the management network
    # (CONTROLLER_IP), which exists only once the network is up, so the controller
    # must listen on every address, not on loopback (its default): the harness reads
    # this; by hand, `ryu-manager --ofp-listen-host 0.0.0.0` (or the `openflow` section).
    CONTROLLER_LISTEN_HOST = "0.0.0.0"

    def build(self, hypervisors=3, rundir=None, controller_port=6653):
        self.rundir = Path(rundir or "/tmp/sdn-overlay")
        mgmt = self.addSwitch("mgmt", cls=PlainSwitch, local_ip=f"{CONTROLLER_IP}/24",
                              dpid="%016x" % 0xFE01)
        underlay = self.addSwitch("ul", cls=PlainSwitch, dpid="%016x" % 0xFE02)
        for number in range(1, hypervisors + 1):
            hv = self.addHost(f"hv{number}", cls=Hypervisor, ip=f"{MGMT_NET}.{number}/24",
                              number=number, rundir=str(self.rundir / f"hv{number}"),
                              controller_port=controller_port, tx_checksum_off=False)
            self.addLink(hv, mgmt, port1=0)
            self.addLink(hv, underlay, port1=1)
            for index, (letter, _) in enumerate(self.TENANTS):
                vm = self.addHost(f"vm{number}{letter}", cls=QuietVm, ip=f"10.0.0.{number}/24",
                                  mac=self.vm_mac(number, index))
                self.addLink(vm, hv, port2=2 + index)

    @staticmethod
    def vm_mac(number, tenant_index):
        return "02:00:00:00:%02x:%02x" % (tenant_index + 1, number)

    def ovsdb_remote(self, hypervisor):
        return f"unix:{self.rundir / hypervisor}/db.sock"

    def app_config(self, l2_population=False):
        """The overlay app's config section for this network: hypervisors, the two
        tenant networks, and every VM port."""
        hvs = [h for h in self.hosts() if h.startswith("hv")]
        return {"overlay": {
            "l2_population": l2_population,
            "hypervisors": [{"name": hv, "int_dpid": int_dpid(int(hv[2:])),
                             "tun_dpid": tun_dpid(int(hv[2:])),
                             "underlay_ip": f"{UNDERLAY_NET}.{hv[2:]}",
                             "ovsdb": self.ovsdb_remote(hv)} for hv in hvs],
            "networks": [{"vni": vni, "name": f"tenant-{letter}"}
                         for letter, vni in self.TENANTS],
            "ports": [{"hypervisor": hv, "port": f"{hv}-eth{2 + index}", "vni": vni,
                       "mac": self.vm_mac(int(hv[2:]), index), "ip": f"10.0.0.{hv[2:]}"}
                      for hv in hvs for index, (_, vni) in enumerate(self.TENANTS)],
        }}


topos = {"overlay": OverlayLab}
