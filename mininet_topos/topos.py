"""Mininet topologies that run on either OVS datapath.

    sudo mn --custom mininet_topos/topos.py --topo tree,2,2 \
            --controller remote,ip=127.0.0.1,port=6653

Every switch is OpenFlow 1.3 on the datapath `controller.datapath` picks
(`system`, or `netdev` where the kernel has no openvswitch module). On `netdev`
every host interface gets tx checksum offload turned off: the userspace
datapath does not complete partial checksums, so TCP stalls otherwise.
"""
import inspect
import os
import signal
import sys
import time
from pathlib import Path

from mininet.link import TCLink
from mininet.node import Host
from mininet.topo import (LinearTopo, MinimalTopo, SingleSwitchReversedTopo, SingleSwitchTopo,
                          Topo)
from mininet.topolib import TreeTopo

try:
    from controller.datapath import NETDEV, choose_datapath
except ImportError:  # `mn --custom` execs this file under the system Python, outside the venv
    _here = Path(inspect.currentframe().f_code.co_filename).resolve()
    sys.path.insert(0, str(_here.parents[1]))
    from controller.datapath import NETDEV, choose_datapath


def kill_9(pid: int, timeout: float = 10) -> None:
    """SIGKILL process `pid` and wait until it is gone (a daemon "crash" in the tests)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} outlived kill -9")
        time.sleep(0.05)


class OffloadOffHost(Host):
    """A host that turns tx checksum offload off on its interfaces when asked."""

    def config(self, tx_checksum_off=False, **params):
        result = super().config(**params)
        if tx_checksum_off:
            for intf in self.intfList():
                if intf.name == "lo":
                    continue
                out, err, code = self.pexec("ethtool", "-K", intf.name, "tx", "off")
                if code != 0:
                    raise RuntimeError(f"ethtool -K {intf.name} tx off failed in {self.name}: "
                                       f"{(err or out).strip()}")
        return result


class DatapathAware:
    """Mixin for Mininet Topo classes: datapath, OpenFlow 1.3 and host class per node."""

    def __init__(self, *args, datapath=None, **params):
        self.datapath = datapath or choose_datapath()
        super().__init__(*args, **params)

    def addSwitch(self, name, **opts):
        opts.setdefault("datapath", "user" if self.datapath == NETDEV else "kernel")
        opts.setdefault("protocols", "OpenFlow13")
        return super().addSwitch(name, **opts)

    def addHost(self, name, **opts):
        opts.setdefault("cls", OffloadOffHost)
        opts.setdefault("tx_checksum_off", self.datapath == NETDEV)
        return super().addHost(name, **opts)


class Single(DatapathAware, SingleSwitchTopo):
    """One switch, k hosts (default 2)."""


class Linear(DatapathAware, LinearTopo):
    """k switches in a line, n hosts on each (default 1)."""


class Tree(DatapathAware, TreeTopo):
    """A tree of switches of the given depth and fanout, hosts at the leaves."""


class Minimal(DatapathAware, MinimalTopo):
    """One switch, two hosts (mn's default)."""


class Reversed(DatapathAware, SingleSwitchReversedTopo):
    """One switch, k hosts, host i on port k - i + 1."""


class VlanLab(DatapathAware, Topo):
    """The VLAN lab: one bridge br0; "VMs" 192.168.100.100/.101/.102 on ports that
    will be access VLANs 101/102/103; first_br, second_br, third_br whose far ends
    first_if (.103), second_if (.104), third_if (.105) live in their own namespaces.
    VLAN_LAB_CONFIG below makes first_br access 103, second_br a trunk of every
    VLAN and third_br a trunk of 101,102."""

    HOSTS = (("vm100", "vm100_if", "vm100_br", "192.168.100.100"),
             ("vm101", "vm101_if", "vm101_br", "192.168.100.101"),
             ("vm102", "vm102_if", "vm102_br", "192.168.100.102"),
             ("first", "first_if", "first_br", "192.168.100.103"),
             ("second", "second_if", "second_br", "192.168.100.104"),
             ("third", "third_if", "third_br", "192.168.100.105"))

    def build(self):
        br0 = self.addSwitch("br0", dpid="%016x" % 1)
        for number, (host, host_intf, switch_intf, ip) in enumerate(self.HOSTS, start=1):
            self.addHost(host, ip=f"{ip}/24")
            self.addLink(host, br0, port2=number, intfName1=host_intf, intfName2=switch_intf)


# The lab's port settings for apps/vlan.py, by switch and port *name*.
VLAN_LAB_CONFIG = {"vlan": {"ports": [
    {"switch": "br0", "port": "vm100_br", "tag": 101},
    {"switch": "br0", "port": "vm101_br", "tag": 102},
    {"switch": "br0", "port": "vm102_br", "tag": 103},
    {"switch": "br0", "port": "first_br", "tag": 103},
    {"switch": "br0", "port": "third_br", "trunks": [101, 102]},
]}}

class VlanTrunkPair(DatapathAware, Topo):
    """Two switches joined by a trunk (port 3 on both); on each, port 1 is in VLAN 10
    and port 2 in VLAN 20: h1, h2 on s1 and h3, h4 on s2 (h1/h3 VLAN 10, h2/h4 VLAN 20).
    All hosts share one IP subnet, so only the VLANs keep them apart."""

    def build(self):
        s1, s2 = self.addSwitch("s1"), self.addSwitch("s2")
        for index, switch in ((1, s1), (2, s1), (3, s2), (4, s2)):
            self.addLink(self.addHost(f"h{index}"), switch, port2=1 if index % 2 else 2)
        self.addLink(s1, s2, port1=3, port2=3)


VLAN_TRUNK_PAIR_CONFIG = {"vlan": {"ports": [
    {"switch": dpid, "port": port, "tag": tag}
    for dpid in (1, 2) for port, tag in ((1, 10), (2, 20))
] + [{"switch": dpid, "port": 3, "trunks": [10, 20]} for dpid in (1, 2)]}}

class QosLab(DatapathAware, Topo):
    """The HTB lab: senders h1, h2, h3 (192.168.100.100/.101/.102) on ports 1-3 of s1,
    the receiver h4 (192.168.100.200) on port 4, whose egress gets the HTB tree.
    Plain links: a TCLink(bw=...) puts its own tc tree where OVS's HTB goes, which
    `receiver_bw` (Mbit/s) does on purpose to show that the QoS app notices."""

    SENDERS = ("192.168.100.100", "192.168.100.101", "192.168.100.102")
    RECEIVER = "192.168.100.200"

    def build(self, receiver_bw=None):
        s1 = self.addSwitch("s1", dpid="%016x" % 1)
        for number, ip in enumerate(self.SENDERS + (self.RECEIVER,), start=1):
            shaped = {"cls": TCLink, "bw": receiver_bw} if receiver_bw and number == 4 else {}
            self.addLink(self.addHost(f"h{number}", ip=f"{ip}/24"), s1, port2=number, **shaped)


# The lab's HTB tree on s1-eth4 (towards h4) and its enqueue rules by source IP (to h4
# only: other traffic from the senders keeps its normal path).
QOS_LAB_CONFIG = {"qos": {
    "ports": [{"switch": "s1", "port": "s1-eth4", "max_rate": "10M",
               "queues": {"0": {"min_rate": "3M", "max_rate": "10M"},
                          "1": {"min_rate": "1M", "max_rate": "10M"},
                          "2": {"min_rate": "6M", "max_rate": "10M"}}}],
    "rules": [{"switch": "s1", "id": queue + 1, "queue": queue,
               "match": {"ipv4_src": ip, "ipv4_dst": QosLab.RECEIVER},
               "port": "s1-eth4"} for queue, ip in enumerate(QosLab.SENDERS)],
}}

class LbLab(DatapathAware, Topo):
    """The load-balancer lab: one switch s1, clients c1, c2 (10.0.0.1, .2) on ports 1-2,
    backends b1..b<backends> (10.0.0.11..) on ports 11.. ; the VIPs are 10.0.0.100+."""

    CLIENTS = ("10.0.0.1", "10.0.0.2")

    def build(self, backends=5):
        s1 = self.addSwitch("s1", dpid="%016x" % 1)
        for number, ip in enumerate(self.CLIENTS, start=1):
            self.addLink(self.addHost(f"c{number}", ip=f"{ip}/24"), s1, port2=number)
        for number in range(1, backends + 1):
            self.addLink(self.addHost(f"b{number}", ip=f"10.0.0.{10 + number}/24"), s1,
                         port2=10 + number)


LB_LAB_SUBNETS = ["10.0.0.0/24"]


class BondLab(DatapathAware, Topo):
    """The bonding lab: s1 and s2 joined by two links (port 3 to port 3, port 4 to
    port 4), h1, h2 on ports 1-2 of s1 and h3, h4 on ports 1-2 of s2 (10.0.0.1-4).
    Until the two links are bonded on both sides they are a loop: the bond app gives
    a bridge its NORMAL entry only once it has a bond."""

    def build(self):
        s1 = self.addSwitch("s1", dpid="%016x" % 1)
        s2 = self.addSwitch("s2", dpid="%016x" % 2)
        for number, switch in ((1, s1), (2, s1), (3, s2), (4, s2)):
            self.addLink(self.addHost(f"h{number}", ip=f"10.0.0.{number}/24"), switch,
                         port2=1 + (number - 1) % 2)
        for port in (3, 4):
            self.addLink(s1, s2, port1=port, port2=port)


class Ring(DatapathAware, Topo):
    """n switches in a ring (a loop: plain flooding storms here). On s<i>, port 1 goes
    to the next switch's port 2 and hosts h<i>... sit on ports 3 and up."""

    def build(self, n=4, hosts_per_switch=1):
        if n < 3:
            raise ValueError("a ring needs at least 3 switches")
        switches = [self.addSwitch(f"s{i}", dpid="%016x" % i) for i in range(1, n + 1)]
        for index, switch in enumerate(switches):
            self.addLink(switch, switches[(index + 1) % n], port1=1, port2=2)
            for h in range(hosts_per_switch):
                name = f"h{index + 1}" if hosts_per_switch == 1 else f"h{index + 1}_{h + 1}"
                self.addLink(self.addHost(name), switch, port2=3 + h)


class FatTree(DatapathAware, Topo):
    """The k-ary fat-tree (Al-Fares et al.): (k/2)^2 core switches c<i>, k pods of k/2
    aggregation a<pod><i> and k/2 edge switches e<pod><i>, k/2 hosts h<pod><e><i> per
    edge switch; k=4: 20 switches, 16 hosts, 48 links, many equal-cost paths.
    dpids: cores 1.., aggregation 0x100 + .., edge 0x200 + ..; every host in
    10.0.0.0/24."""

    def build(self, k=4):
        if k < 2 or k % 2:
            raise ValueError("k must be an even number >= 2")
        half = k // 2
        cores = [self.addSwitch(f"c{i + 1}", dpid="%016x" % (1 + i)) for i in range(half * half)]
        number = 0
        for pod in range(k):
            aggs = [self.addSwitch(f"a{pod}{i}", dpid="%016x" % (0x100 + pod * half + i))
                    for i in range(half)]
            edges = [self.addSwitch(f"e{pod}{i}", dpid="%016x" % (0x200 + pod * half + i))
                     for i in range(half)]
            for a, agg in enumerate(aggs):
                for e, edge in enumerate(edges):
                    self.addLink(agg, edge, port1=1 + e, port2=1 + a)
                for c in range(half):
                    self.addLink(agg, cores[a * half + c], port1=1 + half + c, port2=1 + pod)
            for e, edge in enumerate(edges):
                for h in range(half):
                    number += 1
                    self.addLink(self.addHost(f"h{pod}{e}{h}", ip=f"10.0.0.{number}/24"),
                                 edge, port2=1 + half + h)


class BondRing(DatapathAware, Topo):
    """A ring of n switches (as Ring: s<i> port 1 to the next switch's port 2, host
    h<i> on port 3) in which s1 and s2 are joined by a second link, port 4 to port 4:
    the pair a bond makes one link of (members s1-eth1 + s1-eth4, s2-eth2 + s2-eth4).
    Besides the bond's own parallel links the ring is a loop."""

    def build(self, n=4):
        if n < 3:
            raise ValueError("a ring needs at least 3 switches")
        switches = [self.addSwitch(f"s{i}", dpid="%016x" % i) for i in range(1, n + 1)]
        for index, switch in enumerate(switches):
            self.addLink(switch, switches[(index + 1) % n], port1=1, port2=2)
            self.addLink(self.addHost(f"h{index + 1}"), switch, port2=3)
        self.addLink(switches[0], switches[1], port1=4, port2=4)


# mn's own names first (its TOPOS: all but torus, whose loops a learning switch alone
# cannot take), then this project's
topos = {"minimal": Minimal, "single": Single, "reversed": Reversed, "linear": Linear,
         "tree": Tree, "vlanlab": VlanLab, "vlantrunk": VlanTrunkPair, "qoslab": QosLab,
         "lblab": LbLab, "ring": Ring, "fattree": FatTree, "bondlab": BondLab,
         "bondring": BondRing}
