"""IPv6 neighbour discovery (RFC 4861) as bytes: what the router reads from the ND
frames a switch sends it and the ones it sends back (neighbour solicitations to find a
host, advertisements for its own addresses, router advertisements). No I/O.

Why the controller builds the advertisements rather than the switch: OVS can turn a
solicitation into an advertisement in place only half-way. It refuses `set_field nd_tll`
on a flow matching a solicitation (the field's prerequisite is icmpv6_type=136 in the
match), and its datapath rewrites the option type before the address, so setting
`nd_sll` after `nd_options_type` leaves the asker's own MAC in the answer (seen on OVS
3.1: the host then learnt its own MAC for the gateway). OVN answers ND from its
controller (pinctrl's nd_na) and FAUCET from its valves for the same reason.
"""
import ipaddress
import struct
from dataclasses import dataclass
from typing import Optional

from flows.probes import checksum, ethernet

IPV6, ICMPV6 = 0x86DD, 58
RS, RA, NS, NA = 133, 134, 135, 136
ECHO_REQUEST, ECHO_REPLY = 128, 129
ALL_NODES = "ff02::1"
OPT_SLL, OPT_TLL, OPT_PREFIX = 1, 2, 3
NA_ROUTER, NA_SOLICITED, NA_OVERRIDE = 0x80000000, 0x40000000, 0x20000000
HOP_LIMIT = 255          # ND frames are only taken with 255 (never routed)
ROUTER_LIFETIME_S = 1800
VALID_LIFETIME_S, PREFERRED_LIFETIME_S = 86400, 14400


def link_local(mac: str) -> str:
    """The router's link-local address: fe80:: and the modified EUI-64 of its MAC (as
    Linux makes its own)."""
    b = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([b[0] ^ 0x02]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui))


def solicited_node(ip: str) -> str:
    """ff02::1:ffXX:XXXX, where a host listens for solicitations of `ip`."""
    low = ipaddress.IPv6Address(ip).packed[13:]
    return str(ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + low))


def multicast_mac(ip: str) -> str:
    """33:33 and the group's last 32 bits (RFC 2464)."""
    low = ipaddress.IPv6Address(ip).packed[12:]
    return ":".join(f"{b:02x}" for b in b"\x33\x33" + low)


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _lla(kind: int, mac: str) -> bytes:
    return struct.pack("!BB", kind, 1) + _mac_bytes(mac)


def icmpv6_frame(src_mac, dst_mac, src_ip, dst_ip, message: bytes, vlan=None,
                 hop_limit=HOP_LIMIT) -> bytes:
    """An Ethernet frame holding an IPv6 packet holding `message` (ICMPv6, its
    checksum field zero), the checksum filled in over the pseudo-header."""
    src, dst = ipaddress.IPv6Address(src_ip).packed, ipaddress.IPv6Address(dst_ip).packed
    pseudo = src + dst + struct.pack("!I3xB", len(message), ICMPV6)
    body = message[:2] + struct.pack("!H", checksum(pseudo + message)) + message[4:]
    header = struct.pack("!IHBB", 6 << 28, len(message), ICMPV6, hop_limit) + src + dst
    return ethernet(dst_mac, src_mac, IPV6, vlan) + header + body


def solicitation(mac: str, src_ip: str, target: str, vlan=None) -> bytes:
    """A neighbour solicitation for `target`, to its solicited-node group."""
    group = solicited_node(target)
    message = struct.pack("!BBHI", NS, 0, 0, 0) + ipaddress.IPv6Address(target).packed \
        + _lla(OPT_SLL, mac)
    return icmpv6_frame(mac, multicast_mac(group), src_ip, group, message, vlan)


def advertisement(mac: str, target: str, to_mac: str, to_ip: str, vlan=None,
                  solicited=True) -> bytes:
    """A router's neighbour advertisement of `target` at `mac`."""
    flags = NA_ROUTER | NA_OVERRIDE | (NA_SOLICITED if solicited else 0)
    message = struct.pack("!BBHI", NA, 0, 0, flags) + ipaddress.IPv6Address(target).packed \
        + _lla(OPT_TLL, mac)
    return icmpv6_frame(mac, to_mac, target, to_ip, message, vlan)


def router_advertisement(mac: str, network: ipaddress.IPv6Network, vlan=None,
                         to_mac=None, to_ip=ALL_NODES) -> bytes:
    """A router advertisement from the router's link-local address: it is a default
    router, and `network` is on-link and for autoconfiguration when it is a /64."""
    to_mac = to_mac or multicast_mac(to_ip)
    flags = 0xC0 if network.prefixlen == 64 else 0x80      # L, and A for SLAAC
    prefix = struct.pack("!BBBBIII", OPT_PREFIX, 4, network.prefixlen, flags,
                         VALID_LIFETIME_S, PREFERRED_LIFETIME_S, 0) \
        + network.network_address.packed
    message = struct.pack("!BBHBBHII", RA, 0, 0, 64, 0, ROUTER_LIFETIME_S, 0, 0) \
        + _lla(OPT_SLL, mac) + prefix
    return icmpv6_frame(mac, to_mac, link_local(mac), to_ip, message, vlan)


@dataclass(frozen=True)
class NdMessage:
    """What an ICMPv6 message of an IPv6 packet says, as far as the router cares."""
    kind: int                      # the ICMPv6 type
    target: Optional[str] = None   # NS/NA: the address asked for or advertised
    link_addr: Optional[str] = None   # the SLL (NS, RS) or TLL (NA) option's MAC
    hop_limit: int = 0
    code: int = 0


def parse_icmpv6(packet: bytes) -> Optional[NdMessage]:
    """The ICMPv6 message of an IPv6 packet (its header first), None when it is not
    one or is cut short. Extension headers are not followed: ND never carries them."""
    if len(packet) < 44 or packet[0] >> 4 != 6 or packet[6] != ICMPV6:
        return None
    hop_limit, message = packet[7], packet[40:40 + struct.unpack("!H", packet[4:6])[0]]
    if len(message) < 4:
        return None
    kind, code = message[0], message[1]
    if kind not in (NS, NA, RS):
        return NdMessage(kind, hop_limit=hop_limit, code=code)
    start = 8 if kind == RS else 24
    if len(message) < start:
        return None
    target = str(ipaddress.IPv6Address(message[8:24])) if kind != RS else None
    wanted = OPT_TLL if kind == NA else OPT_SLL
    link_addr, options = None, message[start:]
    while len(options) >= 8 and options[1]:
        size = options[1] * 8
        if options[0] == wanted and options[1] == 1:
            link_addr = ":".join(f"{b:02x}" for b in options[2:8])
        options = options[size:]
    return NdMessage(kind, target, link_addr, hop_limit, code)
