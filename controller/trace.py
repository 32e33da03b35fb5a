"""Where a packet goes across the fabric, and which entries decided it: the web
console's trace and `sdn path` (POST /v1/trace).

OVS answers for one bridge (`ovs-appctl ofproto/trace`); this follows the packet from
switch to switch. Each output of a trace is a datapath port (controller/ovs_trace.py
maps it back to a bridge and an OpenFlow port). When that port is one end of a link
the topology app found, the packet is traced again at the far end, arriving as it
left (with the VLAN tag or rewritten headers the datapath actions gave it);
otherwise it leaves the fabric there (delivered). A flood is followed down every
branch. A state seen before is not traced twice, so a forwarding loop ends the
search instead of running it forever, and MAX_HOPS bounds a large fabric.

This runs `ovs-appctl` on the controller's host, so it traces the switches of this
host's ovs-vswitchd (a Mininet network, a lab). A switch elsewhere is reported as
not traceable here instead of guessed at."""
import ipaddress
import re
import subprocess
from collections import deque
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Tuple

from controller import ovs_trace, pipeline
from flows import conntrack_dump
from flows import dpid as dpids

MAX_HOPS = 64
APPCTL_TIMEOUT_S = 5
PROTOCOLS = ("ip", "icmp", "tcp", "udp", "arp")
DEFAULT_TTL = 64      # a traced IP packet's TTL (IPv6: hop limit), as Linux sends it
# a packet whose addresses are IPv6: its protocol in ofproto/trace's words, and in
# conntrack's (dpctl/dump-conntrack names ICMPv6 "icmpv6", TCP and UDP as for IPv4)
_IPV6_PROTOCOLS = {"ip": "ipv6", "icmp": "icmp6", "tcp": "tcp6", "udp": "udp6"}
_CONNTRACK_NAMES_V6 = {"icmp": "icmpv6"}
_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")
_PORT_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")   # what an OVS port name may be here
# a bridge name as the switch gave it, passed to ovs-appctl only if it cannot be an option
_BRIDGE_NAME = re.compile(r"[A-Za-z0-9_.:][A-Za-z0-9_.:-]{0,63}")
_FIELDS = ("switch", "in_port", "dl_src", "dl_dst", "dl_vlan", "proto", "nw_src", "nw_dst",
           "tp_src", "tp_dst")
MAX_OFPORT = 0xFFFFFF00   # OFPP_MAX: the ports above are reserved


class TraceError(Exception):
    """A trace that cannot run: `status` is the HTTP status the REST layer answers
    (400 a bad request, 404 a switch or port that is not there, 503 no OVS to ask)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Request:
    switch: object        # a switch reference as given (a name or a datapath id)
    in_port: object       # an OpenFlow port number or a port name
    fields: Tuple[Tuple[str, object], ...]   # the packet: dl_src, dl_dst, ...


def _integer(body, key, low, high):
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TraceError(400, f"{key} must be an integer {low}..{high}, not {value!r}")
    return value


def _text(body, key):
    value = body[key]
    if not isinstance(value, str):
        raise TraceError(400, f"{key} must be a string, not {value!r}")
    return value


def request_from(body) -> Request:
    """A POST /v1/trace body as a Request; TraceError(400) for anything else."""
    if not isinstance(body, dict):
        raise TraceError(400, "the body must be a JSON object")
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise TraceError(400, f"unknown field(s) {', '.join(unknown)}; a trace takes "
                              f"{', '.join(_FIELDS)}")
    for key in ("switch", "in_port", "dl_src", "dl_dst"):
        if body.get(key) is None:
            raise TraceError(400, f"{key} is required")
    switch = body["switch"]
    if isinstance(switch, bool) or not isinstance(switch, (str, int)):
        raise TraceError(400, f"switch must be a bridge name or a datapath id, not {switch!r}")
    in_port = body["in_port"]
    if isinstance(in_port, str) and re.fullmatch(r"[0-9]{1,10}", in_port):
        in_port = int(in_port)          # "2" as a path or form gives it
    if isinstance(in_port, str):
        if not _PORT_NAME.fullmatch(in_port):
            raise TraceError(400, f"in_port {in_port!r} is neither a port number nor a "
                                  f"port name")
    else:
        in_port = _integer({"in_port": in_port}, "in_port", 1, MAX_OFPORT)
    fields = {}
    for key in ("dl_src", "dl_dst"):
        mac = _text(body, key)
        if not _MAC.fullmatch(mac):
            raise TraceError(400, f"{key} {mac!r} is not a MAC address like 00:00:00:00:00:01")
        fields[key] = mac.lower()
    if body.get("dl_vlan") is not None:
        fields["dl_vlan"] = _integer(body, "dl_vlan", 0, 4095)
    proto = body.get("proto")
    if proto is not None and proto not in PROTOCOLS:
        raise TraceError(400, f"proto must be one of {', '.join(PROTOCOLS)}, not {proto!r}")
    if proto is not None:
        fields["proto"] = proto
    for key in ("nw_src", "nw_dst"):
        if body.get(key) is None:
            continue
        if proto is None:
            raise TraceError(400, f"{key} needs a proto ({', '.join(PROTOCOLS)})")
        address = _text(body, key)
        try:
            fields[key] = str(ipaddress.ip_address(address))
        except ValueError:
            raise TraceError(400, f"{key} {address!r} is not an IPv4 or IPv6 "
                                  "address") from None
    families = {ipaddress.ip_address(fields[k]).version for k in ("nw_src", "nw_dst")
                if k in fields}
    if len(families) > 1:
        raise TraceError(400, "nw_src and nw_dst must be of one family (IPv4 or IPv6)")
    if families == {6} and proto == "arp":
        raise TraceError(400, "arp takes IPv4 addresses (IPv6 finds neighbours with "
                              "ICMPv6)")
    for key in ("tp_src", "tp_dst"):
        if body.get(key) is None:
            continue
        if proto not in ("tcp", "udp"):
            raise TraceError(400, f"{key} needs proto tcp or udp")
        fields[key] = _integer(body, key, 0, 65535)
    return Request(switch, in_port, tuple(sorted(fields.items())))


def flow_text(in_port: int, fields: Dict[str, object]) -> str:
    """A packet in ofproto/trace's flow syntax. The protocol comes first: OVS checks a
    field's prerequisites (tp_dst needs tcp or udp) as it reads each one."""
    proto = fields.get("proto")
    six = is_ipv6(fields)
    parts = [_IPV6_PROTOCOLS.get(proto, proto) if six else proto] if proto else []
    parts += [f"in_port={in_port}", f"dl_src={fields['dl_src']}", f"dl_dst={fields['dl_dst']}"]
    if fields.get("dl_vlan") is not None:
        parts.append(f"dl_vlan={fields['dl_vlan']}")
    if proto == "arp":
        parts += [f"arp_sha={fields['dl_src']}", "arp_op=1"]
        parts += [f"arp_{end}pa={fields[key]}" for end, key in (("s", "nw_src"), ("t", "nw_dst"))
                  if key in fields]
        return ",".join(parts)
    # ports by the protocol's own names: ofproto/trace (OVS 3.1) reads tp_dst as TCP's
    # and refuses it after udp, udp6 or tcp6 ("prerequisites not met for setting tp_dst")
    names = {"nw_src": "ipv6_src", "nw_dst": "ipv6_dst"} if six else {}
    if proto in ("tcp", "udp"):
        names.update(tp_src=f"{proto}_src", tp_dst=f"{proto}_dst")
    parts += [f"{names.get(key, key)}={fields[key]}" for key in ("nw_src", "nw_dst")
              if key in fields]
    if proto in ("ip", "icmp", "tcp", "udp"):
        # what a host sends (ofproto/trace starts at 0, which a router's dec_ttl
        # sends to the controller as an invalid TTL); a routed hop carries its own on
        parts.append(f"nw_ttl={fields.get('nw_ttl', DEFAULT_TTL)}")
    parts += [f"{names.get(key, key)}={fields[key]}" for key in ("tp_src", "tp_dst")
              if key in fields]
    if proto == "icmp":   # an echo request, what ping sends
        parts += ["icmpv6_type=128", "icmpv6_code=0"] if six else ["icmp_type=8", "icmp_code=0"]
    return ",".join(parts)


def is_ipv6(fields: Dict[str, object]) -> bool:
    """Whether the packet's addresses are IPv6 (the request allows one family only)."""
    return any(":" in str(fields.get(key, "")) for key in ("nw_src", "nw_dst"))


def run_appctl(args) -> Tuple[int, str]:
    """`ovs-appctl ARGS` on this host: (exit status, what it printed). TraceError(503)
    when there is no ovs-appctl or ovs-vswitchd does not answer."""
    try:
        done = subprocess.run(["ovs-appctl", "-t", "ovs-vswitchd", *args], capture_output=True,
                              text=True, timeout=APPCTL_TIMEOUT_S)
    except FileNotFoundError:
        raise TraceError(503, "cannot trace: ovs-appctl is not installed on the "
                              "controller's host") from None
    except (OSError, subprocess.TimeoutExpired) as err:
        raise TraceError(503, f"cannot trace: ovs-appctl failed ({err})") from None
    return done.returncode, done.stdout if done.returncode == 0 else \
        (done.stderr or done.stdout).strip()


_ZONE = re.compile(r"\bzone=(\d+)")
MAX_CONNECTIONS = 50


def _same_tuple(packet, seen) -> bool:
    """The packet's addresses and (where it names them) ports are the entry's."""
    return packet[:2] == seen[:2] and all(p is None or p == s
                                          for p, s in zip(packet[2:], seen[2:]))


def link_ends(links: Iterable) -> Dict[Tuple[int, int], Tuple[int, int]]:
    """Each end of every link (objects with `a` and `b`, (dpid, port) each) -> the far end."""
    ends = {}
    for link in links:
        ends[tuple(link.a)] = tuple(link.b)
        ends[tuple(link.b)] = tuple(link.a)
    return ends


def _named_rules(rules) -> list:
    """The rules as REST gives them, each with its table's name in the pipeline its
    bridge runs (an overlay's tunnel bridge has tables of its own)."""
    tables = {}
    for rule in rules:
        tables.setdefault(rule.bridge, set()).add(rule.table)
    named = []
    for rule in rules:
        kind = pipeline.kind_of_tables(tables[rule.bridge])
        try:
            name = pipeline.table_name(rule.table, kind)
        except pipeline.PipelineError:
            name = None
        named.append(dict(rule.as_dict(), table_name=name))
    return named


class Tracer:
    """One trace across the fabric. `bridge_of(dpid)` and `dpid_of(bridge)` name the
    connected switches; `links` maps each link end to its far end; `appctl(args)` is
    run_appctl (a fake in unit tests)."""

    def __init__(self, bridge_of: Callable[[int], Optional[str]],
                 dpid_of: Callable[[str], Optional[int]],
                 links: Dict[Tuple[int, int], Tuple[int, int]], appctl=None):
        self.bridge_of, self.dpid_of, self.links = bridge_of, dpid_of, links
        self.appctl = appctl or run_appctl

    def run(self, start: int, request: Request) -> dict:
        bridge = self.bridge_of(start)
        if bridge is None:
            raise TraceError(404, f"no switch {dpids.format(start)} is connected")
        status, shown = self.appctl(["dpif/show"])
        if status != 0:
            raise TraceError(503, f"cannot trace: ovs-appctl dpif/show: {shown}")
        ports = ovs_trace.datapath_ports(shown)
        in_port = self._port_of(bridge, request.in_port, ports)
        fields = dict(request.fields)
        hops, delivered, seen, visited = [], [], set(), set()
        queue = deque([(start, in_port, fields)])
        truncated = False
        while queue:
            dpid, port, fields = queue.popleft()
            state = (dpid, port, tuple(sorted(fields.items())))
            if state in seen:
                continue
            if len(hops) >= MAX_HOPS:
                truncated = True
                break
            seen.add(state)
            hop = self._hop(dpid, port, fields, ports, queue, delivered)
            hop["revisit"] = dpid in visited   # a switch reached twice: a loop or two paths
            visited.add(dpid)
            hops.append(hop)
        connections, error = self._connections(hops, dict(request.fields))
        return {"switch": dpids.format(start), "name": bridge, "in_port": in_port,
                "packet": flow_text(in_port, dict(request.fields)), "hops": hops,
                "delivered": delivered, "truncated": truncated, "conntrack": connections,
                "conntrack_error": error}

    def _connections(self, hops, fields):
        """The live connections of this packet (its 5-tuple, either way) in the conntrack
        zones its path went through (ofproto/trace shows a first packet, resumed as
        trk|new: this is the entry a packet of a live connection meets, with its mark)."""
        zones = {int(z) for hop in hops for rule in hop["rules"]
                 for action in rule.get("actions", ()) for z in _ZONE.findall(action)}
        if not zones or "nw_src" not in fields or "nw_dst" not in fields:
            return [], None
        try:
            status, text = self.appctl(["dpctl/dump-conntrack"])
        except TraceError as err:
            return [], str(err)
        if status != 0:
            return [], f"dpctl/dump-conntrack: {text}"
        packet = (fields["nw_src"], fields["nw_dst"], fields.get("tp_src"),
                  fields.get("tp_dst"))
        protocol = fields.get("proto")
        if is_ipv6(fields):
            protocol = _CONNTRACK_NAMES_V6.get(protocol, protocol)
        found = []
        for conn in conntrack_dump.parse(text):
            if conn.zone not in zones or conn.protocol != protocol:
                continue
            for direction, seen in (("original", conn.original), ("reply", conn.reply)):
                if seen is not None and _same_tuple(packet, seen):
                    found.append(dict(conn.to_dict(), direction=direction))
                    break
        return found[:MAX_CONNECTIONS], None

    def _port_of(self, bridge, ref, ports) -> int:
        mine = {p.ofport: p.name for p in ports.values() if p.bridge == bridge}
        if isinstance(ref, int):
            if ref not in mine:
                raise TraceError(404, f"{bridge} has no port {ref}")
            return ref
        for number, name in mine.items():
            if name == ref:
                return number
        raise TraceError(404, f"{bridge} has no port named {ref!r}")

    def _hop(self, dpid, port, fields, ports, queue, delivered) -> dict:
        bridge = self.bridge_of(dpid)
        flow = flow_text(port, fields)
        hop = {"dpid": dpids.format(dpid), "name": bridge, "in_port": port, "flow": flow,
               "rules": [], "datapath_actions": [], "outputs": [], "others": [],
               "to_controller": False, "dropped": False}
        if bridge is None:
            hop["error"] = "this switch is not connected to the controller"
            return hop
        if not _BRIDGE_NAME.fullmatch(bridge):
            hop["error"] = f"cannot trace a bridge named {bridge!r} (not a plain name)"
            return hop
        status, shown = self.appctl(["ofproto/trace", bridge, flow])
        if status != 0:
            hop["error"] = f"ofproto/trace: {shown}"
            return hop
        trace = ovs_trace.parse_trace(shown)
        fate = ovs_trace.fate(trace.datapath_actions, fields)
        hop.update(rules=_named_rules(trace.rules),
                   datapath_actions=trace.datapath_actions, others=fate.others,
                   to_controller=fate.to_controller, passes=trace.passes,
                   dropped=not fate.outputs and not fate.to_controller)
        for output in fate.outputs:
            hop["outputs"].append(self._output(output, ports, queue, delivered))
        return hop

    def _output(self, output, ports, queue, delivered) -> dict:
        where = ports.get(output.dp_port)
        if where is None:
            return {"dp_port": output.dp_port, "dpid": None, "port": None, "name": None}
        out_dpid = self.dpid_of(where.bridge)
        record = {"dpid": None if out_dpid is None else dpids.format(out_dpid),
                  "bridge": where.bridge, "port": where.ofport, "name": where.name,
                  "vlan": output.fields.get("dl_vlan")}
        far = self.links.get((out_dpid, where.ofport)) if out_dpid is not None else None
        if far is None:
            delivered.append(dict(record, packet=dict(output.fields)))
            return record
        record["to"] = {"dpid": dpids.format(far[0]), "port": far[1]}
        queue.append((far[0], far[1], output.fields))
        return record
