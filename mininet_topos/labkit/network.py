"""A Mininet network we own (stopped and its bridges removed whatever broke), the
switch flavours it is built from, and what tests do on it: ping, raw frames, the
links between switches."""
import contextlib
import os
import re
import subprocess

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch, RemoteController

from mininet_topos.labkit import flowdump
from mininet_topos.labkit.ovs import ensure_ovs


class StandaloneOVSSwitch(OVSSwitch):
    """No controller: OVS falls back to its own NORMAL learning switch (the baseline)."""

    def __init__(self, name, **params):
        params["failMode"] = "standalone"
        super().__init__(name, **params)


class ListeningController(RemoteController):
    """A RemoteController without Mininet's check that it listens (Controller.start
    has waited for that): the check telnets to the port, and when the controller's
    HELLO arrives before telnet quits, its random xid bytes can crash Mininet's UTF-8
    decoder (seen in CI)."""

    def checkListening(self):
        pass


class RstpOVSSwitch(StandaloneOVSSwitch):
    """NORMAL with OVS's own rapid spanning tree, from the moment the bridge exists (a
    looped topology would storm before a later `ovs-vsctl set`)."""

    def bridgeOpts(self):
        return super().bridgeOpts() + " rstp_enable=true"


class Network:
    """A Mininet network of `topo` attached to `controller` (None: OVS NORMAL, no
    controller, with RSTP if `rstp`; a list: every switch lists each of them as a
    controller target, as a controller cluster's switches do); `stop()` removes it all."""

    def __init__(self, topo, controller=None, rstp=False):
        setLogLevel(os.environ.get("SDN_MININET_LOG", "warning"))
        self.topo = topo
        self.controlled = controller is not None
        switch = OVSSwitch if self.controlled else (RstpOVSSwitch if rstp
                                                    else StandaloneOVSSwitch)
        self.net = Mininet(topo=topo, switch=switch, controller=None, autoSetMacs=True,
                           build=False)
        controllers = controller if isinstance(controller, (list, tuple)) else [controller]
        for index, each in enumerate(controllers if self.controlled else ()):
            self.net.addController(f"c{index}", controller=ListeningController,
                                   ip="127.0.0.1", port=each.of_port,
                                   protocol="ssl" if each.tls else "tcp")

    def start(self, timeout=30):
        ensure_ovs()
        try:
            self.net.build()
            self.net.start()
            if self.controlled and not self.net.waitConnected(timeout=timeout):
                raise RuntimeError("switches did not connect to the controller in time")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        with contextlib.suppress(Exception):  # cleanup must go on whatever broke
            self.net.stop()
        for name in self.topo.switches():  # bridges a half-built net may have left
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", name], capture_output=True)

    def __getitem__(self, name):
        return self.net[name]

    @property
    def hosts(self):
        return self.net.hosts

    @property
    def switches(self):
        return self.net.switches

    def pingall(self, timeout="1"):
        """Loss in percent over all host pairs."""
        return self.net.pingAll(timeout=timeout)

    def dump_flows(self, switch, table=None):
        """The entries' lines as ovs-ofctl prints them (flows() reads them)."""
        return [flow.text for flow in self.flows(switch, table)]

    def flows(self, switch, table=None):
        """The switch's entries (of `table`), parsed: flowdump.Flow values."""
        args = ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch]
        if table is not None:
            args.append(f"table={table}")
        return flowdump.parse(subprocess.run(args, capture_output=True, text=True,
                                             check=True).stdout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def inter_switch_interfaces(network):
    """(switch, interface) for every interface of a switch that links to another switch
    (the links a loop runs over)."""
    for switch in network.switches:
        for intf in switch.intfList():
            link = intf.link
            if link is None:
                continue
            other = link.intf2 if link.intf1 is intf else link.intf1
            if other.node in network.switches:
                yield switch, intf


def ping(src, dst, count=1, timeout=1) -> bool:
    out = src.cmd(f"ping -c {count} -W {timeout} {dst.IP()}")
    return bool(re.search(rf"\b{count} received", out))


_SEND_RAW = ("import socket, sys; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
             "s.bind((sys.argv[1], 0)); "
             "[s.send(bytes.fromhex(f)) for f in sys.argv[2:]]")


def send_frames(host, frames, intf=None):
    """Send raw Ethernet frames (bytes) from `host`'s interface: tagged frames
    without the kernel's 802.1Q support, which some kernels lack."""
    intf = intf or host.defaultIntf().name
    out, err, code = host.pexec("python3", "-c", _SEND_RAW, intf, *[f.hex() for f in frames])
    if code != 0:
        raise RuntimeError(f"sending raw frames from {host.name} failed: {err or out}")


def ethernet_frame(src, dst, vlan=None, ethertype=0x88B5, payload=bytes(46)):
    """A frame as bytes; ethertype 0x88b5 is the IEEE local-experimental type."""
    tag = b"" if vlan is None else (0x8100).to_bytes(2, "big") + vlan.to_bytes(2, "big")
    return (bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + tag
            + ethertype.to_bytes(2, "big") + payload)
