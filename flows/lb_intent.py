"""The load balancer's intent: VIPs, their backends and health-check settings as the
REST API and the config file give them, parsed and checked (a VIP and its backends
inside one of the subnets the switch serves), and the `lb` config section.

Apart from flows/lb.py (what goes on the switch) because this is only the door: what
a VIP is, before anything about conntrack, groups or VLANs.
"""
import ipaddress
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

from flows.body import only_keys

MODES = ("nat", "dsr")
PROTOCOLS = {"tcp": 6, "udp": 17}
# a VIP's id is its conntrack zone: 1..0x3FFF, below the security groups' zones
# (0x4000 + network, flows/security.py), so the two never share connections
MAX_VIPS = 0x3FFF


@dataclass(frozen=True)
class Backend:
    ip: str
    port: int
    weight: int = 1


@dataclass(frozen=True)
class Health:
    interval_s: float = 1.0
    timeout_s: float = 1.0
    # unanswered probes in a row before a backend leaves the group (a refusal, RST,
    # takes it out at once): one probe lost on a busy switch must not flap the group
    misses: int = 3


@dataclass(frozen=True)
class Vip:
    vip_id: int
    ip: str
    protocol: str
    port: int
    mode: str
    backends: Tuple[Backend, ...]
    health: Health = Health()

    def backend(self, ip):
        return next((b for b in self.backends if b.ip == ip), None)


# --- validation ---------------------------------------------------------------------

def _ip(value, what):
    try:
        return str(ipaddress.IPv4Address(value))
    except (ValueError, TypeError):
        raise ValueError(f"{what} must be an IPv4 address, not {value!r}") from None


def _int(value, what, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer {low}..{high}, not {value!r}")
    return value


def _seconds(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.1 <= value <= 60:
        raise ValueError(f"{what} must be 0.1..60 seconds, not {value!r}")
    return float(value)


def _subnet_of(ip, subnets):
    return next((net for net in subnets if ipaddress.IPv4Address(ip) in net), None)


def backend_from_dict(body, default_port) -> Backend:
    only_keys(body, ("ip", "port", "weight"), "backend")
    if "ip" not in body:
        raise ValueError("a backend needs an ip")
    return Backend(_ip(body["ip"], "backend ip"),
                   _int(body.get("port", default_port), "backend port", 1, 65535),
                   _int(body.get("weight", 1), "weight", 1, 255))


def vip_from_dict(vip_id: int, body, subnets: Sequence[ipaddress.IPv4Network]) -> Vip:
    """A VIP from {"vip", "protocol", "port", "mode", "backends", "health"};
    the VIP and its backends must be inside one of the `subnets` the switch serves."""
    only_keys(body, ("vip", "protocol", "port", "mode", "backends", "health"), "VIP")
    missing = [k for k in ("vip", "port", "backends") if k not in body]
    if missing:
        raise ValueError(f"a VIP needs {', '.join(missing)}")
    ip = _ip(body["vip"], "vip")
    subnet = _subnet_of(ip, subnets)
    if subnet is None:
        known = ", ".join(map(str, subnets)) or "none configured"
        raise ValueError(f"VIP {ip} is inside no known subnet (known: {known})")
    protocol = body.get("protocol", "tcp")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be tcp or udp, not {protocol!r}")
    mode = body.get("mode", "nat")
    if mode not in MODES:
        raise ValueError(f"mode must be nat or dsr, not {mode!r}")
    port = _int(body["port"], "port", 1, 65535)
    raw = body["backends"]
    if not isinstance(raw, list) or not raw:
        raise ValueError("backends must be a non-empty list of {ip, port, weight}")
    backends = tuple(backend_from_dict(b, port) for b in raw)
    ips = [b.ip for b in backends]
    if len(set(ips)) != len(ips):
        raise ValueError(f"a backend is listed twice: {ips}")
    for backend in backends:
        if _subnet_of(backend.ip, [subnet]) is None or backend.ip == ip:
            raise ValueError(f"backend {backend.ip} must be a host of the VIP's subnet "
                             f"{subnet}, other than the VIP")
        if mode == "dsr" and backend.port != port:
            raise ValueError(f"dsr does not rewrite ports: backend {backend.ip} must use "
                             f"port {port}")
    health = body.get("health") or {}
    only_keys(health, ("interval_s", "timeout_s", "misses"), "health")
    health = Health(_seconds(health.get("interval_s", 1.0), "interval_s"),
                    _seconds(health.get("timeout_s", 1.0), "timeout_s"),
                    _int(health.get("misses", 3), "misses", 1, 10))
    return Vip(_int(vip_id, "VIP id", 1, MAX_VIPS), ip, protocol, port, mode, backends, health)


def vips_from(settings, overrides, problems=None) -> Dict[int, Vip]:
    """{VIP id: Vip}: the config file's VIPs (ids 1, 2, ... in file order), then
    `overrides` ({"id": body or None}, from REST). A VIP that does not parse is left
    out and reported in `problems`."""
    bodies = {index + 1: body for index, body in enumerate(settings.vips)}
    for key, body in (overrides or {}).items():
        if body is None:
            bodies.pop(int(key), None)
        else:
            bodies[int(key)] = body
    vips = {}
    for vip_id, body in sorted(bodies.items()):
        try:
            vips[vip_id] = vip_from_dict(vip_id, body, settings.subnets)
        except ValueError as err:
            if problems is not None:
                problems.append(f"VIP {vip_id} left out: {err}")
    return vips


def vip_to_dict(vip: Vip) -> dict:
    return {"id": vip.vip_id, "vip": vip.ip, "protocol": vip.protocol, "port": vip.port,
            "mode": vip.mode,
            "backends": [{"ip": b.ip, "port": b.port, "weight": b.weight}
                         for b in vip.backends],
            "health": {"interval_s": vip.health.interval_s, "timeout_s": vip.health.timeout_s,
                       "misses": vip.health.misses}}


@dataclass(frozen=True)
class LbSettings:
    """The `lb` config section:

        lb:
          subnets: [10.0.0.0/24]     # where VIPs and their backends live
          probe_ip: 10.0.0.254       # health probes' source (default: last host of subnet 1)
          vips:
            - {vip: 10.0.0.100, protocol: tcp, port: 80, mode: nat,
               backends: [{ip: 10.0.0.11, port: 8080, weight: 1}],
               health: {interval_s: 1, timeout_s: 1}}
    """
    subnets: tuple = ()
    probe_ip: str = None
    vips: tuple = ()

    def __post_init__(self):
        try:
            nets = tuple(ipaddress.IPv4Network(s) for s in self.subnets or ())
        except (ValueError, TypeError) as err:
            raise ValueError(f"subnets must be IPv4 prefixes like 10.0.0.0/24: {err}") from None
        object.__setattr__(self, "subnets", nets)
        probe = self.probe_ip
        if probe is None and nets:
            probe = str(nets[0].broadcast_address - 1)
        if probe is not None:
            probe = _ip(probe, "probe_ip")
            if _subnet_of(probe, nets) is None:
                raise ValueError(f"probe_ip {probe} must be inside one of the subnets")
        object.__setattr__(self, "probe_ip", probe)
        for index, body in enumerate(self.vips or ()):
            try:
                vip_from_dict(index + 1, body, nets)
            except ValueError as err:
                raise ValueError(f"vips[{index}]: {err}") from None
        object.__setattr__(self, "vips", tuple(self.vips or ()))
