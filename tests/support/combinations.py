"""The shared switch of tests/unit/test_app_combinations.py: six hosts, one config
section per app, every subset of the apps, and the switch those apps program (composed as
`sdn plan` composes them); tests/unit/test_contracts.py checks the same combinations."""
import itertools

from controller import plan
from flows import l2, lb, vlan
from tests.support.ofsim import Switch, frame

DPID, BONDED = 1, 2
HOSTS = {  # name: (port, mac, ip, VLAN when the VLAN app runs)
    "h1": (1, "00:00:00:00:00:01", "10.0.0.1", 10),
    "h2": (2, "00:00:00:00:00:02", "10.0.0.2", 10),
    "h3": (3, "00:00:00:00:00:03", "10.0.0.3", 20),
    "h4": (4, "00:00:00:00:00:04", "10.0.0.4", 10),     # the QoS receiver
    "b1": (11, "00:00:00:00:00:0b", "10.0.0.11", 10),   # the VIP's backends
    "b2": (12, "00:00:00:00:00:0c", "10.0.0.12", 10),
}
PORTS = {port: f"s1-eth{port}" for port, _, _, _ in HOSTS.values()}
VIP = "10.0.0.100"
BROADCAST = "ff:ff:ff:ff:ff:ff"

# one config section per app; a combination's config is the merge of its apps' sections
SECTIONS = {
    "vlan": {"ports": [{"switch": DPID, "port": port, "tag": tag}
                       for port, _, _, tag in HOSTS.values()]},
    "qos": {"ports": [{"switch": DPID, "port": "s1-eth4", "max_rate": "10M",
                       "queues": {"0": {"min_rate": "3M"}, "1": {"min_rate": "1M"}}}],
            "rules": [{"switch": DPID, "id": 1, "queue": 1, "port": "s1-eth4",
                       "match": {"ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.4"}}]},
    "lb": {"subnets": ["10.0.0.0/24"],
           "vips": [{"vip": VIP, "protocol": "tcp", "port": 80, "mode": "nat",
                     "backends": [{"ip": "10.0.0.11", "port": 8080},
                                  {"ip": "10.0.0.12", "port": 8080}]}]},
    "bond": {"bonds": [{"switch": BONDED, "name": "s2-bond", "members": ["s2-eth1", "s2-eth2"],
                        "mode": "active-backup"}]},
    # h1 bound to a group that lets everything in, h2 (a web server) to one that lets in
    # TCP 80, and TCP 8080 from the members of "open" (a remote group: h1): what the
    # other apps do must go through the security stage unchanged
    "security": {"groups": {"open": [{"direction": "ingress"},
                                     {"direction": "ingress", "ethertype": "IPv6"}],
                            "web": [{"direction": "ingress", "protocol": "tcp", "ports": 80},
                                    {"direction": "ingress", "protocol": "tcp", "ports": 8080,
                                     "remote_group": "open"}]},
                 "ports": [{"switch": DPID, "port": HOSTS[name][0], "addresses": [HOSTS[name][2]],
                            "groups": [group]} for name, group in (("h1", "open"), ("h2", "web"))],
                 # h4 may not send UDP 9 (discard); VLAN 10's UDP 7 (echo) goes untracked
                 "acls": [{"switch": DPID, "port": 4, "match": {"udp_dst": 9}, "action": "drop"},
                          {"vlan": 10, "match": {"udp_dst": 7}, "action": "allow",
                           "priority": 200}]},
    # gateways for VLANs 10 and 20 on networks of their own (the hosts' other
    # addresses): the router must leave the rest alone and route between them
    "router": {"interfaces": [{"vlan": 10, "address": "10.0.10.1/24",
                               "address6": "fd00:10::1/64"},
                              {"vlan": 20, "address": "10.0.20.1/24",
                               "address6": "fd00:20::1/64"}]},
}
ROUTER_MAC = "02:00:00:00:fe:01"
OTHERS = ("vlan", "qos", "lb", "bond", "security", "router")
# every subset of the other apps, with no learning app or with it in either mode (the
# router only with the VLAN app: its gateways are per VLAN)
COMBINATIONS = [(mode, others) for mode in (None, "reactive", "datapath")
                for n in range(len(OTHERS) + 1) for others in itertools.combinations(OTHERS, n)
                if (mode or others) and ("router" not in others or "vlan" in others)]


def combo_id(combo):
    mode, others = combo
    return "+".join(([f"l2-{mode}"] if mode else []) + list(others))


def config_of(mode, others):
    data = {name: SECTIONS[name] for name in others}
    if mode:
        data["l2_switch"] = {"mode": mode}
    return data


class Combination:
    """The shared switch programmed by the apps of one combination."""

    def __init__(self, mode, others):
        self.mode, self.apps = mode, set(others)
        self.data = config_of(mode, others)
        shared = plan.planned_switch("s1", DPID, PORTS)
        planned = plan.plan(self.data, shared, datapath="system")
        assert planned["problems"] == []
        self.planned = dict(planned["apps"])
        self.entries = dict(planned["apps"])
        self.untagged = vlan.untagged_egress_pairs(vlan.effective_ports(
            vlan.configured_ports(plan.config.section(vlan.VlanSettings, "vlan", self.data).ports,
                                  shared.is_named, shared.resolve),
            shared.ports)) if "vlan" in self.apps else frozenset()
        if "lb" in self.apps:   # the app's push once ARP has located both backends
            (vip,) = lb.vips_from(plan.config.section(lb.LbSettings, "lb", self.data),
                                  {}).values()
            # as the app sees them: a backend's VLAN is the tag its replies arrive with
            located = [lb.Located(vip.backend(HOSTS[b][2]), HOSTS[b][1], HOSTS[b][0],
                                  HOSTS[b][3] if "vlan" in self.apps else None)
                       for b in ("b1", "b2")]
            self.entries["lb"] = [e for e in self.entries["lb"] if not _is_vip_item(e)] + \
                lb.vip_flows(vip, located, False, located, self.untagged)
        self.switch = Switch(sorted(PORTS))
        for items in self.entries.values():
            self.switch.apply(items)

    def send(self, host, dst_mac, **fields):
        """Send a frame from `host`; check the invariants on what comes out; answer the
        packet-ins as the reactive learning app does. {host: [frames]} delivered."""
        port, mac, ip, _ = HOSTS[host]
        fields.setdefault("ipv4_src", ip)
        result = self.switch.process(frame(port, mac, dst_mac, **fields))
        delivered = {}
        by_port = {p: name for name, (p, _, _, _) in HOSTS.items()}
        for out, frames in result.outputs.items():
            for sent in frames:
                if sent["eth_src"] == mac:
                    assert out != port, f"{host}'s frame went back out of its in_port"
                assert sent["vlan_vid"] is None, \
                    f"frame from {host} left port {out} tagged {sent['vlan_vid']}: {sent}"
                if "vlan" in self.apps and sent["eth_src"] != ROUTER_MAC:   # not routed
                    assert HOSTS[by_port[out]][3] == HOSTS[host][3], \
                        f"frame from {host} (VLAN {HOSTS[host][3]}) crossed to {by_port[out]}"
                delivered.setdefault(by_port[out], []).append(sent)
        if self.mode == "reactive":
            for copy in result.packet_ins:
                vid = copy["vlan_vid"]
                self.switch.apply(l2.learn_host(copy["eth_src"], copy["in_port"], vid, 300,
                                                (copy["in_port"], vid) in self.untagged))
        return delivered


def _is_vip_item(item):
    owner = getattr(item, "owner", None) or getattr(getattr(item, "ref", None), "owner", None)
    return owner is not None and owner.purpose == "vip"
