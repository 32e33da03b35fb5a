"""The cloud chapter's tenant network, in Mininet: one switch s1, the learning, VLAN,
security and router apps on it (SECURITY_LAB_CONFIG, by port number).

    sudo mn --custom mininet_topos/security_topo.py --topo securitylab \\
            --controller remote,ip=127.0.0.1,port=6653
    ryu-manager apps/l2_switch.py apps/vlan.py apps/security.py apps/router.py
    (with SECURITY_LAB_CONFIG as the config file)

- tenant A, VLAN 10 (10.0.10.0/24, gateway .1): `web` .2, a web server whose groups
  let in TCP 80 from anywhere and anything from its own tenant's ports (the group
  `tenant-a` as its own remote group); `app` .3, which lets in its own tenant only;
- tenant B, VLAN 20 (10.0.20.0/24, gateway .1): `b1` .2, which lets in its own
  tenant's ports only;
- the external VLAN 100 (203.0.113.0/24): the router's external address .1, and
  `outside` .254, standing in for the Internet (and the upstream router: the default
  route points at it). Both tenants leave through SNAT to 203.0.113.1; a floating
  IP 203.0.113.10 for `web` is what the lab adds over REST.
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

EXTERNAL, FLOATING = "203.0.113.1", "203.0.113.10"
# name: (switch port, VLAN, address/prefix, gateway, tenant, security groups)
HOSTS = {
    "web": (1, 10, "10.0.10.2/24", "10.0.10.1", "A", ["web", "tenant-a"]),
    "app": (2, 10, "10.0.10.3/24", "10.0.10.1", "A", ["tenant-a"]),
    "b1": (3, 20, "10.0.20.2/24", "10.0.20.1", "B", ["tenant-b"]),
    "outside": (4, 100, "203.0.113.254/24", None, None, None),
}


def address(name: str) -> str:
    return HOSTS[name][2].split("/")[0]


SECURITY_LAB_CONFIG = {
    "l2_switch": {"mode": "reactive"},
    "vlan": {"ports": [{"switch": "s1", "port": port, "tag": vlan}
                       for port, vlan, *_ in HOSTS.values()]},
    "security": {
        "groups": {"web": [{"direction": "ingress", "protocol": "tcp", "ports": 80}],
                   # Neutron's default group: anything from the group's own ports
                   "tenant-a": [{"direction": "ingress", "remote_group": "tenant-a"}],
                   "tenant-b": [{"direction": "ingress", "remote_group": "tenant-b"}]},
        "ports": [{"switch": "s1", "port": port, "addresses": [address(name)],
                   "groups": groups}
                  for name, (port, _, _, _, _, groups) in HOSTS.items() if groups]},
    "router": {"interfaces": [{"vlan": 10, "address": "10.0.10.1/24"},
                              {"vlan": 20, "address": "10.0.20.1/24"},
                              {"vlan": 100, "address": f"{EXTERNAL}/24", "external": True}],
               "routes": [{"prefix": "0.0.0.0/0", "next_hop": address("outside")}],
               "snat": [10, 20]},
}


class SecurityLab(DatapathAware, Topo):
    """One switch s1 (dpid 1); web, app, b1 and outside on ports 1-4 with their
    addresses and default routes (`outside` routes 10.0.0.0/8 to the router, so it can
    try the private addresses too)."""

    def build(self):
        s1 = self.addSwitch("s1", dpid="%016x" % 1)
        for name, (port, _, cidr, gateway, _, _) in HOSTS.items():
            route = f"via {gateway}" if gateway else None
            host = self.addHost(name, ip=cidr, defaultRoute=route)
            self.addLink(host, s1, port2=port)

    @staticmethod
    def configure(network):
        network["outside"].cmd(f"ip route add 10.0.0.0/8 via {EXTERNAL}")


topos = {"securitylab": SecurityLab}
