"""The overlay's intent, piece by piece: hypervisors, tenant networks (VNIs) and VM
ports, as the REST API and the config file give them, parsed and checked at the door
and formatted back for REST.

Apart from flows/overlay.py (the whole overlay's model and its config section) because
these are the values a request or a config entry carries, each checked on its own;
whether they fit together is the model's business.
"""
import ipaddress
import re
from dataclasses import dataclass
from typing import Optional

from flows.body import only_keys
from flows.dpid import DpidError, format as format_dpid, parse as parse_dpid
from flows.spec import Match

MAX_VNI = 16_777_215
TUNNEL_TYPES = ("vxlan", "gre")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,9}$")


@dataclass(frozen=True)
class Hypervisor:
    name: str
    int_dpid: int
    tun_dpid: int
    underlay_ip: str
    ovsdb: Optional[str] = None      # its OVSDB (None: the controller's default)


@dataclass(frozen=True)
class Network:
    vni: int
    name: str
    tunnel_type: Optional[str] = None   # None: the overlay's default


@dataclass(frozen=True)
class VmPort:
    hypervisor: str
    port: str                        # on the integration bridge, by name or number
    vni: int
    mac: Optional[str] = None        # known MAC and IP: L2 population (table 20 entries,
    ip: Optional[str] = None         # ARP answers in the tunnel bridge)


def _dpid(value, what):
    try:
        number = parse_dpid(value)
    except DpidError as err:
        raise ValueError(f"{what}: {err}") from None
    if number == 0:  # the overlay has always refused 0 (and flows/dpid.py takes it)
        raise ValueError(f"{what} must be a datapath id other than 0")
    return number


def vni_of(value) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VNI:
        raise ValueError(f"vni must be an integer 1..{MAX_VNI}, not {value!r}")
    return value


def tunnel_type_of(value) -> str:
    if value not in TUNNEL_TYPES:
        raise ValueError(f"tunnel_type must be one of {', '.join(TUNNEL_TYPES)}, not {value!r}")
    return value


def hypervisor_from_dict(body) -> Hypervisor:
    only_keys(body, ("name", "int_dpid", "tun_dpid", "underlay_ip", "ovsdb"), "hypervisor")
    missing = [k for k in ("name", "int_dpid", "tun_dpid", "underlay_ip") if k not in body]
    if missing:
        raise ValueError(f"hypervisor needs {', '.join(missing)}")
    name = body["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"hypervisor name must be 1-10 letters, digits, '_', '.', '-' "
                         f"(it goes into tunnel port names), not {name!r}")
    try:
        ip = str(ipaddress.IPv4Address(body["underlay_ip"]))
    except (ValueError, TypeError):
        raise ValueError(f"underlay_ip must be an IPv4 address, not {body['underlay_ip']!r}") \
            from None
    int_dpid, tun_dpid = _dpid(body["int_dpid"], "int_dpid"), _dpid(body["tun_dpid"], "tun_dpid")
    if int_dpid == tun_dpid:
        raise ValueError("int_dpid and tun_dpid must be two different bridges")
    ovsdb = body.get("ovsdb")
    if ovsdb is not None and (not isinstance(ovsdb, str) or
                              not re.match(r"^(tcp|ssl|unix):.+", ovsdb)):
        raise ValueError(f"ovsdb must be an OVSDB remote like tcp:IP:PORT or unix:PATH, "
                         f"not {ovsdb!r}")
    return Hypervisor(name, int_dpid, tun_dpid, ip, ovsdb)


def network_from_dict(body) -> Network:
    only_keys(body, ("vni", "name", "tunnel_type"), "network")
    if "vni" not in body:
        raise ValueError("network needs a vni")
    name = body.get("name", f"vni{body['vni']}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"network name must be a non-empty string, not {name!r}")
    kind = body.get("tunnel_type")
    return Network(vni_of(body["vni"]), name, None if kind is None else tunnel_type_of(kind))


def vm_port_from_dict(body) -> VmPort:
    only_keys(body, ("hypervisor", "port", "vni", "mac", "ip"), "port")
    missing = [k for k in ("hypervisor", "port", "vni") if k not in body]
    if missing:
        raise ValueError(f"port needs {', '.join(missing)}")
    port = body["port"]
    if isinstance(port, bool) or not isinstance(port, (str, int)) or str(port) == "":
        raise ValueError(f"port must be a port name or number, not {port!r}")
    mac = body.get("mac")
    if mac is not None:
        mac = Match.of(eth_src=mac).get("eth_src")   # normalises, raises when malformed
    ip = body.get("ip")
    if ip is not None:
        try:
            ip = str(ipaddress.IPv4Address(ip))
        except (ValueError, TypeError):
            raise ValueError(f"ip must be an IPv4 address, not {ip!r}") from None
        if mac is None:
            raise ValueError("ip needs the port's mac (ARP answers carry it)")
    return VmPort(str(body["hypervisor"]), str(port), vni_of(body["vni"]), mac, ip)


def vm_port_to_dict(port: VmPort) -> dict:
    return {k: v for k, v in (("hypervisor", port.hypervisor), ("port", port.port),
                              ("vni", port.vni), ("mac", port.mac), ("ip", port.ip))
            if v is not None}


def hypervisor_to_dict(hv: Hypervisor) -> dict:
    out = {"name": hv.name, "int_dpid": format_dpid(hv.int_dpid),
           "tun_dpid": format_dpid(hv.tun_dpid), "underlay_ip": hv.underlay_ip}
    if hv.ovsdb:
        out["ovsdb"] = hv.ovsdb
    return out


def network_to_dict(network: Network) -> dict:
    out = {"vni": network.vni, "name": network.name}
    if network.tunnel_type:
        out["tunnel_type"] = network.tunnel_type
    return out
