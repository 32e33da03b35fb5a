"""The router as data: interfaces, static routes, SNAT and floating IPs, and the `router`
config section, checked at the door (a bad key or value is a ValueError that names it).

    router:
      mac: "02:00:00:00:fe:01"        # the gateways' MAC (every interface's), optional
      interfaces:                      # one gateway per VLAN (the VLAN app's VLANs)
        - {vlan: 10, address: 10.0.10.1/24, address6: "fd00:10::1/64"}
        - {vlan: 20, address: 10.0.20.1/24}
        - {vlan: 100, address: 203.0.113.1/24, external: true}
      routes:                          # static routes, longest prefix first
        - {prefix: 0.0.0.0/0, next_hop: 203.0.113.254}
      snat: [10, 20]                   # VLANs that leave as the external address
      floating_ips:                    # 1:1 DNAT + SNAT on the external network
        - {external: 203.0.113.10, internal: 10.0.20.2}

An interface is a gateway address in a VLAN: hosts of that VLAN use it as their
default gateway, and the router answers ARP and ping for it and routes what is sent
to its MAC. The external interface (at most one) is where the outside is: nothing
from there reaches an internal address except through a floating IP or as the reply
of a connection an internal host opened.

IPv6 (`address6`, internal interfaces only): the router routes between its directly
connected IPv6 networks, answers neighbour discovery for its gateway address and its
link-local one, and advertises the prefix (router advertisements) so hosts configure
themselves. Static routes, SNAT and floating IPs are IPv4's: the external interface has
no IPv6 address (there is no NAT66 and nothing to guard the inside with).
"""
import ipaddress
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from flows.body import only_keys
from flows.spec import is_multicast_mac, normalize_mac

APP = "router"
DEFAULT_MAC = "02:00:00:00:fe:01"
INTERFACE_KEYS = ("vlan", "address", "external", "address6")
ROUTE_KEYS = ("prefix", "next_hop")
FLOATING_KEYS = ("external", "internal")
MAX_ROUTES = 1000
MAX_FLOATING_IPS = 1000


@dataclass(frozen=True)
class Interface:
    vlan: int
    address: str        # "10.0.10.1/24"
    external: bool = False
    address6: Optional[str] = None   # "fd00:10::1/64"

    @property
    def ip(self) -> str:
        return str(ipaddress.IPv4Interface(self.address).ip)

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Interface(self.address).network

    @property
    def ip6(self) -> Optional[str]:
        return None if self.address6 is None else str(
            ipaddress.IPv6Interface(self.address6).ip)

    @property
    def network6(self) -> Optional[ipaddress.IPv6Network]:
        return None if self.address6 is None else ipaddress.IPv6Interface(
            self.address6).network

    def holds(self, address) -> bool:
        """Whether `address` (an ip_address) lies on this interface's network of its
        family."""
        if address.version == 6:
            return self.address6 is not None and address in self.network6
        return address in self.network

    def to_dict(self):
        out = {"vlan": self.vlan, "address": self.address, "external": self.external}
        if self.address6 is not None:
            out["address6"] = self.address6
        return out


@dataclass(frozen=True)
class Route:
    prefix: str         # a network, "0.0.0.0/0"
    next_hop: str

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.prefix)

    def to_dict(self):
        return {"prefix": self.prefix, "next_hop": self.next_hop}


@dataclass(frozen=True)
class FloatingIp:
    external: str
    internal: str

    def to_dict(self):
        return {"external": self.external, "internal": self.internal}


def _vlan(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4094:
        raise ValueError(f"{where}: vlan must be a VLAN id 1..4094, not {value!r}")
    return value


def _address(value, where, what="address"):
    if not isinstance(value, str):
        raise ValueError(f"{where}: {what} must be an IPv4 address as a string, not {value!r}")
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{where}: {what} {value!r} is not an IPv4 address") from None


def interface_from_dict(body, where="interface") -> Interface:
    only_keys(body, INTERFACE_KEYS, where)
    for key in ("vlan", "address"):
        if key not in body:
            raise ValueError(f"{where}: {key} is required")
    vlan = _vlan(body["vlan"], where)
    address = body["address"]
    iface = _with_prefix(address, ipaddress.IPv4Interface, where, "address", "10.0.10.1/24")
    if not 8 <= iface.network.prefixlen <= 30 or iface.ip in (iface.network.network_address,
                                                              iface.network.broadcast_address):
        raise ValueError(f"{where}: {address} must be a host of a /8../30 network")
    if iface.ip.is_multicast or iface.ip.is_loopback or iface.ip.is_unspecified:
        raise ValueError(f"{where}: {address} cannot be a gateway address")
    external = body.get("external", False)
    if not isinstance(external, bool):
        raise ValueError(f"{where}: external must be true or false, not {external!r}")
    address6 = body.get("address6")
    if address6 is not None:
        if external:
            raise ValueError(f"{where}: the external interface has no IPv6 address (IPv6 "
                             "is routed between internal networks, with no NAT)")
        address6 = _address6(address6, where)
    return Interface(vlan, str(iface), external, address6)


def _with_prefix(value, kind, where, key, example):
    """`value` as an IPv4Interface or IPv6Interface (`kind`): an address with its prefix
    length, or a ValueError naming `key` and showing `example`."""
    try:
        iface = kind(value) if isinstance(value, str) else None
    except ValueError:
        iface = None
    if iface is None or "/" not in value:
        family = "IPv4" if kind is ipaddress.IPv4Interface else "IPv6"
        raise ValueError(f"{where}: {key} must be an {family} address with its prefix "
                         f"length ({example}), not {value!r}")
    return iface


def _address6(value, where) -> str:
    iface = _with_prefix(value, ipaddress.IPv6Interface, where, "address6", "fd00:10::1/64")
    ip = iface.ip
    if not 16 <= iface.network.prefixlen <= 127 or ip == iface.network.network_address:
        raise ValueError(f"{where}: address6 {value} must be a host of a /16../127 network "
                         "(not its subnet-router address)")
    if ip.is_multicast or ip.is_loopback or ip.is_unspecified or ip.is_link_local or \
            ip.is_site_local or ip.is_reserved or ip.ipv4_mapped is not None:
        raise ValueError(f"{where}: {value} cannot be a gateway address (a global or "
                         "unique-local unicast one)")
    return str(iface)


def route_from_dict(body, where="route") -> Route:
    only_keys(body, ROUTE_KEYS, where)
    for key in ROUTE_KEYS:
        if key not in body:
            raise ValueError(f"{where}: {key} is required")
    prefix = body["prefix"]
    try:
        network = ipaddress.IPv4Network(prefix) if isinstance(prefix, str) else None
    except ValueError:
        network = None
    if network is None:
        raise ValueError(f"{where}: prefix must be an IPv4 network (10.1.0.0/16) with no "
                         f"host bits set, not {prefix!r}")
    hop = _address(body["next_hop"], where, "next_hop")
    return Route(str(network), str(hop))


def floating_from_dict(body, where="floating IP") -> FloatingIp:
    only_keys(body, FLOATING_KEYS, where)
    for key in FLOATING_KEYS:
        if key not in body:
            raise ValueError(f"{where}: {key} is required")
    return FloatingIp(str(_address(body["external"], where, "external")),
                      str(_address(body["internal"], where, "internal")))


def _items(value, name):
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list, not {type(value).__name__}")
    return list(value)


@dataclass(frozen=True)
class RouterSettings:
    """The `router` config section (see the module docstring)."""
    mac: str = DEFAULT_MAC
    interfaces: tuple = ()
    routes: tuple = ()
    snat: tuple = ()
    floating_ips: tuple = ()

    def __post_init__(self):
        if not isinstance(self.mac, str):
            raise ValueError(f"mac must be a MAC address as a string, not {self.mac!r}")
        mac = normalize_mac(self.mac)
        if is_multicast_mac(mac) or mac == "00:00:00:00:00:00":
            raise ValueError(f"mac {self.mac} must be a unicast address")
        object.__setattr__(self, "mac", mac)
        interfaces = tuple(interface_from_dict(body, f"interfaces[{i}]")
                           for i, body in enumerate(_items(self.interfaces, "interfaces")))
        object.__setattr__(self, "interfaces", interfaces)
        check_interfaces(interfaces)
        object.__setattr__(self, "routes", tuple(
            route_from_dict(body, f"routes[{i}]")
            for i, body in enumerate(_items(self.routes, "routes"))))
        object.__setattr__(self, "floating_ips", tuple(
            floating_from_dict(body, f"floating_ips[{i}]")
            for i, body in enumerate(_items(self.floating_ips, "floating_ips"))))
        snat = _items(self.snat, "snat")
        for vlan in snat:
            _vlan(vlan, "snat")
        object.__setattr__(self, "snat", tuple(sorted(set(snat))))
        check(self, routes_of(self.routes), floatings_of(self.floating_ips))

    def external(self) -> Optional[Interface]:
        return next((i for i in self.interfaces if i.external), None)

    def internal(self) -> Tuple[Interface, ...]:
        return tuple(i for i in self.interfaces if not i.external)


def check_interfaces(interfaces):
    vlans, networks, networks6 = set(), [], []
    for iface in interfaces:
        if iface.vlan in vlans:
            raise ValueError(f"interfaces: VLAN {iface.vlan} has two gateways")
        vlans.add(iface.vlan)
        for other in networks:
            if iface.network.overlaps(other):
                raise ValueError(f"interfaces: {iface.network} overlaps {other}")
        networks.append(iface.network)
        if iface.address6 is not None:
            for other in networks6:
                if iface.network6.overlaps(other):
                    raise ValueError(f"interfaces: {iface.network6} overlaps {other}")
            networks6.append(iface.network6)
    if sum(i.external for i in interfaces) > 1:
        raise ValueError("interfaces: at most one is external")


def routes_of(routes) -> Dict[str, Route]:
    """{prefix: Route}, refusing a prefix given twice."""
    out = {}
    for route in routes:
        if route.prefix in out:
            raise ValueError(f"routes: {route.prefix} is given twice")
        out[route.prefix] = route
    return out


def floatings_of(floating_ips) -> Dict[str, FloatingIp]:
    out = {}
    for fip in floating_ips:
        if fip.external in out:
            raise ValueError(f"floating_ips: {fip.external} is given twice")
        out[fip.external] = fip
    return out


def interface_for(settings: RouterSettings, ip) -> Optional[Interface]:
    """The interface whose network holds `ip` (a directly connected address, IPv4 or
    IPv6)."""
    address = ipaddress.ip_address(ip)
    return next((i for i in settings.interfaces if i.holds(address)), None)


def _is_host(settings: RouterSettings, ip) -> bool:
    """A host address of a connected network: not its network or broadcast address."""
    iface = interface_for(settings, ip)
    address = ipaddress.IPv4Address(ip)
    return iface is not None and address not in (iface.network.network_address,
                                                 iface.network.broadcast_address)


def check(settings: RouterSettings, routes: Dict[str, Route],
          floating: Dict[str, FloatingIp]) -> None:
    """The whole router must make sense: next hops on a connected network (not a
    gateway address), SNAT and floating IPs only with an external interface, floating
    IPs on the external network and mapped to internal hosts, each internal host at
    most once."""
    if len(routes) > MAX_ROUTES:
        raise ValueError(f"at most {MAX_ROUTES} routes")
    if len(floating) > MAX_FLOATING_IPS:
        raise ValueError(f"at most {MAX_FLOATING_IPS} floating IPs")
    gateways = {i.ip for i in settings.interfaces}
    for route in routes.values():
        if not _is_host(settings, route.next_hop) or route.next_hop in gateways \
                or route.next_hop in floating:
            raise ValueError(f"route {route.prefix}: next hop {route.next_hop} is not a host "
                             "of a connected network (an interface's, not a floating IP)")
    internal_vlans = {i.vlan for i in settings.internal()}
    for vlan in settings.snat:
        if vlan not in internal_vlans:
            raise ValueError(f"snat: VLAN {vlan} is not an internal interface's")
    outside = settings.external()
    if (settings.snat or floating) and outside is None:
        raise ValueError("snat and floating_ips need an external interface")
    taken = set()
    for fip in floating.values():
        ext, inner = ipaddress.IPv4Address(fip.external), interface_for(settings, fip.internal)
        if ext not in outside.network or fip.external in gateways or \
                ext in (outside.network.network_address, outside.network.broadcast_address):
            raise ValueError(f"floating IP {fip.external}: must be a host of the external "
                             f"network {outside.network} other than the gateway")
        if inner is None or inner.external or fip.internal in gateways or \
                not _is_host(settings, fip.internal):
            raise ValueError(f"floating IP {fip.external}: internal {fip.internal} is not a "
                             "host of an internal network")
        if fip.internal in taken:
            raise ValueError(f"floating IP {fip.external}: {fip.internal} has one already")
        taken.add(fip.internal)


@dataclass
class RouterState:
    """What the router runs with: the settings, then REST's routes and floating IPs
    ({key: body or None}; None removes the config file's)."""
    settings: RouterSettings
    route_overrides: dict = field(default_factory=dict)
    floating_overrides: dict = field(default_factory=dict)

    def routes(self) -> Dict[str, Route]:
        return _merged(routes_of(self.settings.routes), self.route_overrides,
                       lambda key, body: route_from_dict(body, f"route {key}"))

    def floating_ips(self) -> Dict[str, FloatingIp]:
        return _merged(floatings_of(self.settings.floating_ips), self.floating_overrides,
                       lambda key, body: floating_from_dict(body, f"floating IP {key}"))

    def check(self):
        check(self.settings, self.routes(), self.floating_ips())


def _merged(base, overrides, parse):
    out = dict(base)
    for key, body in overrides.items():
        if body is None:
            out.pop(key, None)
        else:
            out[key] = parse(key, body)
    return out
