"""A real OVS bridge for the conntrack labs (tests/support/ctlab.py): a userspace
(netdev) bridge with two network namespaces on its ports, flows pushed as the bytes the
project's compiler emits over the bridge's own management socket (what ovs-ofctl
talks to; no controller), sockets opened inside the namespaces by this process, and
OVS's connection table read with ovs-appctl. Needs root; touches only what it creates.
"""
import contextlib
import ctypes
import os
import re
import socket
import struct
import subprocess
from typing import Dict, List

from ryu.ofproto import ofproto_parser
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import ofcompile
from tests.support import ctlab, wire

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@contextlib.contextmanager
def netns(name):
    """This thread inside namespace `name` for the block (sockets made there stay
    there), back in its own afterwards."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), f"setns into {name}")
        yield
    finally:
        if _libc.setns(own, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(own)
        os.close(target)


class Channel:
    """OpenFlow 1.3 over the bridge's management socket: send messages, and a barrier
    that returns the switch's errors (and the replies) before it."""

    def __init__(self, bridge):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(f"/var/run/openvswitch/{bridge}.mgmt")
        self.sock.sendall(struct.pack("!BBHI", ofp.OFP_VERSION, ofp.OFPT_HELLO, 8, 1))
        version, kind = self._read()[:2]
        if kind != ofp.OFPT_HELLO:
            raise RuntimeError(f"no hello from {bridge}")

    def _read(self):
        head = self._exact(8)
        version, kind, length, xid = struct.unpack("!BBHI", head)
        return version, kind, length, xid, head + self._exact(length - 8)

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("switch closed the management socket")
            data += chunk
        return data

    def send(self, data: bytes):
        self.sock.sendall(data)

    def barrier(self) -> list:
        """Messages the switch sent before its barrier reply, parsed by Ryu."""
        request = parser.OFPBarrierRequest(wire.DP)
        request.serialize()
        self.send(bytes(request.buf))
        got = []
        while True:
            version, kind, length, xid, data = self._read()
            if kind == ofp.OFPT_BARRIER_REPLY:
                return got
            got.append(ofproto_parser.msg(wire.DP, version, kind, length, xid, data))

    def install(self, specs):
        """Replace every flow of the bridge by `specs` (through ctlab.on_the_wire)."""
        delete = parser.OFPFlowMod(wire.DP, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                                   out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)
        delete.serialize()
        self.send(bytes(delete.buf))
        self._check(self.barrier())
        # datapath flows cached from the flows before would handle the next packets
        # until the revalidators catch up (a scenario's first packet got lost), and
        # their last statistics would count on the new flows: purge them in between
        _run("ovs-appctl", "revalidator/purge")
        for data, _ in ctlab.on_the_wire(specs):
            self.send(data)
        self._check(self.barrier())

    @staticmethod
    def _check(replies):
        errors = [m for m in replies if isinstance(m, parser.OFPErrorMsg)]
        if errors:
            raise RuntimeError(f"the switch refused flows: {errors}")

    def flow_counts(self) -> Dict[object, int]:
        """{spec as the switch reports it, decoded: packets it matched}. The datapath's
        counts reach the flows when the revalidators pass: wait for that first."""
        _run("ovs-appctl", "revalidator/wait")
        _run("ovs-appctl", "revalidator/wait")
        request = parser.OFPFlowStatsRequest(wire.DP, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                             ofp.OFPG_ANY, 0, 0, parser.OFPMatch())
        request.serialize()
        self.send(bytes(request.buf))
        counts = {}
        for reply in self.barrier():
            for stat in getattr(reply, "body", ()):
                counts[ofcompile.decode_flow(stat)] = stat.packet_count
        return counts

    def close(self):
        self.sock.close()


# OVS's dpctl/dump-conntrack line: proto,orig=(...),reply=(...),zone=N,mark=M
_CONN = re.compile(r"^(\w+),orig=\(([^)]*)\),reply=\(([^)]*)\)(.*)$")


def connections(zone) -> List[dict]:
    """OVS's connections in `zone`: {proto, orig, reply (dicts of src, dst, sport,
    dport, id...), mark} per line of `ovs-appctl dpctl/dump-conntrack zone=N`."""
    found = []
    for line in _run("ovs-appctl", "dpctl/dump-conntrack", f"zone={zone}").splitlines():
        m = _CONN.match(line.strip())
        if not m:
            continue
        orig, reply = (dict(kv.split("=", 1) for kv in part.split(",")) for part in m.groups()[1:3])
        extra = dict(kv.split("=", 1) for kv in m.group(4).strip(",").split(",") if "=" in kv)
        found.append({"proto": m.group(1), "orig": orig, "reply": reply,
                      "mark": int(extra.get("mark", "0"), 0)})
    return found


def flush(zone):
    _run("ovs-appctl", "dpctl/flush-conntrack", f"zone={zone}")


class Lab:
    """Bridge `bridge` (netdev) with namespace `inside` on port 1 and `outside` on port
    2; addresses, routes and permanent neighbours as ctlab says, so no ARP crosses the
    bridge and IPv6 is off (nothing unasked crosses it: flow counters count the test's
    own packets only)."""

    def __init__(self, bridge="brct", inside="ctin", outside="ctout"):
        self.bridge, self.inside, self.outside = bridge, inside, outside

    def __enter__(self):
        self.teardown()
        _run("ovs-vsctl", "add-br", self.bridge, "--", "set", "Bridge", self.bridge,
             "datapath_type=netdev", "fail_mode=secure", "protocols=OpenFlow13")
        plan = {self.inside: (ctlab.INSIDE, ctlab.INSIDE_MAC, [ctlab.CLIENT, ctlab.CLIENT2],
                              [ctlab.SERVER], ctlab.OUTSIDE_MAC),
                self.outside: (ctlab.OUTSIDE, ctlab.OUTSIDE_MAC, [ctlab.SERVER],
                               [ctlab.CLIENT, ctlab.CLIENT2, ctlab.SNAT_IP, ctlab.FLOATING_IP],
                               ctlab.INSIDE_MAC)}
        for ns, (number, mac, mine, peers, peer_mac) in plan.items():
            port = f"{ns}-br"
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0",
                 "netns", ns)
            _run("ip", "link", "set", port, "up")
            _run("ovs-vsctl", "add-port", self.bridge, port, "--", "set", "Interface", port,
                 f"ofport_request={number}")
            inns = ["ip", "netns", "exec", ns]
            _run(*inns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            _run(*inns, "ip", "link", "set", "eth0", "address", mac, "up")
            _run(*inns, "ethtool", "-K", "eth0", "tx", "off")   # userspace datapath + TCP
            for address in mine:
                _run(*inns, "ip", "addr", "add", f"{address}/32", "dev", "eth0")
            for address in peers:
                _run(*inns, "ip", "route", "add", f"{address}/32", "dev", "eth0")
                _run(*inns, "ip", "neigh", "replace", address, "lladdr", peer_mac, "dev",
                     "eth0", "nud", "permanent")
        self.channel = Channel(self.bridge)
        return self

    def socket(self, ns, kind, bind):
        with netns(ns):
            sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(bind)
        sock.settimeout(0.3)
        return sock

    def teardown(self):
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", self.bridge], capture_output=True)
        for ns in (self.inside, self.outside):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            subprocess.run(["ip", "link", "del", f"{ns}-br"], capture_output=True)

    def __exit__(self, *exc):
        channel = getattr(self, "channel", None)
        if channel is not None:
            channel.close()
        self.teardown()
