"""The network of TCP/IP Illustrated, Volume 1 (its inside cover), in Mininet.

    sudo mn --custom mininet_topos/tcpip_topo.py --topo tcpip \\
            --controller remote,ip=127.0.0.1,port=6653
    (then, in the Mininet CLI: py net.topo.configure(net))

- the lower Ethernet 140.252.13.32/27 (switch s1): sun .33, svr4 .34, bsdi .35;
- the upper Ethernet 140.252.1.0/24 (switch s2): gateway .4, gemini .11, solaris .32,
  aix .92, netb .183; both Ethernets are OVS bridges driven by the learning app;
- a point-to-point link slip .65 - bsdi .66 (140.252.13.64/27);
- a point-to-point link sun 140.252.1.29 - netb 140.252.1.183: netb answers ARP for
  sun's .29 on the upper Ethernet (proxy ARP), so the upper hosts reach sun, and
  through it (their route for the lower nets) the lower Ethernet and slip;
- gateway .4 is everybody's way out: it masquerades (NAT) towards `outside`
  (203.0.113.2, standing in for the Internet), which has no route back to 140.252
  and so only ever sees the gateway's 203.0.113.1.
"""
import inspect
import sys
from pathlib import Path

from mininet.topo import Topo

try:
    from mininet_topos.topos import DatapathAware
except ImportError:  # `mn --custom` execs this file under the system Python
    _here = Path(inspect.currentframe().f_code.co_filename).resolve()
    sys.path.insert(0, str(_here.parents[1]))
    from mininet_topos.topos import DatapathAware

LOWER, UPPER = "s1", "s2"
# host -> [(interface, address as `ip addr add` takes it, what the link goes to)]
INTERFACES = {
    "slip": [("slip-eth0", "140.252.13.65/27", "bsdi")],
    "bsdi": [("bsdi-eth0", "140.252.13.35/27", LOWER), ("bsdi-eth1", "140.252.13.66/27", "slip")],
    "svr4": [("svr4-eth0", "140.252.13.34/27", LOWER)],
    "sun": [("sun-eth0", "140.252.13.33/27", LOWER),
            ("sun-eth1", "140.252.1.29/32 peer 140.252.1.183", "netb")],
    "netb": [("netb-eth0", "140.252.1.183/24", UPPER),
             ("netb-eth1", "140.252.1.183/32 peer 140.252.1.29", "sun")],
    "aix": [("aix-eth0", "140.252.1.92/24", UPPER)],
    "solaris": [("solaris-eth0", "140.252.1.32/24", UPPER)],
    "gemini": [("gemini-eth0", "140.252.1.11/24", UPPER)],
    "gateway": [("gateway-eth0", "140.252.1.4/24", UPPER),
                ("gateway-eth1", "203.0.113.1/24", "outside")],
    "outside": [("outside-eth0", "203.0.113.2/24", "gateway")],
}
LOWER_NETS = ("140.252.13.32/27", "140.252.13.64/27")
UPPER_ROUTES = [f"{net} via 140.252.1.29" for net in LOWER_NETS] + ["default via 140.252.1.4"]
ROUTES = {
    "slip": ["default via 140.252.13.66"],
    "bsdi": ["default via 140.252.13.33"],
    "svr4": ["140.252.13.64/27 via 140.252.13.35", "default via 140.252.13.33"],
    "sun": ["140.252.13.64/27 via 140.252.13.35", "default via 140.252.1.183 dev sun-eth1"],
    "netb": [f"{net} via 140.252.1.29 dev netb-eth1" for net in LOWER_NETS]
    + ["default via 140.252.1.4"],
    "aix": UPPER_ROUTES, "solaris": UPPER_ROUTES, "gemini": UPPER_ROUTES,
    "gateway": [f"{net} via 140.252.1.29" for net in LOWER_NETS],
    "outside": [],  # no way back to 140.252: only the gateway's NAT gets replies home
}
ROUTERS = ("bsdi", "sun", "netb", "gateway")
NODES = ("slip", "bsdi", "svr4", "sun", "netb", "aix", "solaris", "gemini", "gateway")


def address_of(host):
    """A node's first address (what the others ping)."""
    return INTERFACES[host][0][1].split("/")[0]


class TcpIpLab(DatapathAware, Topo):
    def build(self):
        self.addSwitch(LOWER, dpid="%016x" % 0x13)
        self.addSwitch(UPPER, dpid="%016x" % 0x01)
        for host in INTERFACES:
            self.addHost(host, ip=None)
        linked = set()
        for host, interfaces in INTERFACES.items():
            for intf, _, peer in interfaces:
                if peer in (LOWER, UPPER):
                    self.addLink(host, peer, intfName1=intf)
                elif (peer, host) not in linked:
                    peer_intf = next(i for i, _, p in INTERFACES[peer] if p == host)
                    self.addLink(host, peer, intfName1=intf, intfName2=peer_intf)
                    linked.add((host, peer))

    @staticmethod
    def configure(net):
        """Addresses, routes, forwarding, netb's proxy ARP and the gateway's NAT."""
        for host, interfaces in INTERFACES.items():
            node = net[host]
            for intf, address, _ in interfaces:
                _run(node, f"ip addr flush dev {intf}")
                _run(node, f"ip addr add {address} dev {intf}")
                _run(node, f"ip link set {intf} up")
            for route in ROUTES[host]:
                _run(node, f"ip route add {route}")
        for router in ROUTERS:
            _run(net[router], "sysctl -qw net.ipv4.ip_forward=1")
        _run(net["netb"], "sysctl -qw net.ipv4.conf.netb-eth0.proxy_arp=1")
        _run(net["gateway"], "iptables -t nat -A POSTROUTING -o gateway-eth1 -j MASQUERADE")


def _run(node, command):
    # An explicit sh: Mininet's shell=True reads $SHELL, which CI does not set.
    out, err, code = node.pexec(["sh", "-c", command])
    if code != 0:
        raise RuntimeError(f"{node.name}: {command}: {(err or out).strip()}")


topos = {"tcpip": TcpIpLab}
