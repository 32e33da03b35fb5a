"""Health-probe frames the controller sends through a switch (packet-out), and what it
makes of the replies (packet-in): ARP to find a backend's MAC and port, a TCP SYN to
see that its service accepts connections. Bytes in, bytes out; no I/O.

With the VLAN app loaded every frame carries a VLAN tag inside the pipeline (VLAN 0
for untagged frames of ports without settings), so a reply reaches the controller
tagged: the parser reads past 802.1Q (and 802.1ad) tags and reports the outermost
VLAN, the backend's VLAN inside the pipeline. Frames the controller sends leave by a
packet-out straight to a port, past the VLAN app's egress, so they are built with a
tag when the port carries the backend's VLAN tagged (`vlan`)."""
import ipaddress
import struct
from dataclasses import dataclass
from typing import Optional

ETH_IP, ETH_ARP = 0x0800, 0x0806
VLAN_TPIDS = (0x8100, 0x88A8)
MAX_TAGS = 2    # more than a QinQ stack in a probe reply is not ours
SYN, RST, ACK = 0x02, 0x04, 0x10


def _mac(text):
    return bytes.fromhex(text.replace(":", ""))


def _ip(text):
    return ipaddress.IPv4Address(text).packed


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(dst_mac, src_mac, ethertype, vlan=None) -> bytes:
    """An Ethernet header; with `vlan` (0..4094) an 802.1Q tag (priority 0) in it."""
    tag = b""
    if vlan is not None:
        if isinstance(vlan, bool) or not isinstance(vlan, int) or not 0 <= vlan <= 4094:
            raise ValueError(f"vlan must be a VLAN id 0..4094 or None, not {vlan!r}")
        tag = struct.pack("!HH", 0x8100, vlan)
    return _mac(dst_mac) + _mac(src_mac) + tag + struct.pack("!H", ethertype)


def arp_request(src_mac, src_ip, target_ip, vlan=None) -> bytes:
    return (ethernet("ff:ff:ff:ff:ff:ff", src_mac, ETH_ARP, vlan)
            + struct.pack("!HHBBH", 1, ETH_IP, 6, 4, 1) + _mac(src_mac) + _ip(src_ip)
            + bytes(6) + _ip(target_ip))


def tcp_segment(src_mac, dst_mac, src_ip, dst_ip, sport, dport, flags, seq=0, ack=0,
                vlan=None) -> bytes:
    """An Ethernet/IPv4/TCP frame with correct checksums (no payload, no options);
    tagged with `vlan` unless it is None."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    pseudo = _ip(src_ip) + _ip(dst_ip) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     _ip(src_ip), _ip(dst_ip))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ethernet(dst_mac, src_mac, ETH_IP, vlan) + ip + tcp


@dataclass(frozen=True)
class ArpReply:
    ip: str
    mac: str
    vlan: Optional[int] = None   # the frame's (outermost) VLAN tag; None: untagged


@dataclass(frozen=True)
class TcpReply:
    ip: str
    port: int          # the backend's (source) port
    probe_port: int    # our (destination) port
    flags: int
    seq: int
    ack: int
    vlan: Optional[int] = None

    @property
    def accepted(self):
        return self.flags & (SYN | ACK) == SYN | ACK


def _link_layer(frame: bytes):
    """(ethertype, offset of the payload, outermost VLAN id or None), or None when the
    frame is too short or stacks more tags than MAX_TAGS."""
    offset, vlan = 12, None
    for _ in range(MAX_TAGS + 1):
        if len(frame) < offset + 2:
            return None
        (ethertype,) = struct.unpack_from("!H", frame, offset)
        if ethertype not in VLAN_TPIDS:
            return ethertype, offset + 2, vlan
        if len(frame) < offset + 4:
            return None
        if vlan is None:
            vlan = struct.unpack_from("!H", frame, offset + 2)[0] & 0x0FFF
        offset += 4
    return None


def parse_reply(frame: bytes):
    """An ArpReply, a TcpReply, or None for anything else (or anything malformed),
    tagged or not."""
    link = _link_layer(frame)
    if link is None:
        return None
    ethertype, at, vlan = link
    if ethertype == ETH_ARP and len(frame) >= at + 28:
        op = struct.unpack_from("!H", frame, at + 6)[0]
        if op != 2:
            return None
        return ArpReply(str(ipaddress.IPv4Address(frame[at + 14:at + 18])),
                        frame[at + 8:at + 14].hex(":"), vlan)
    if ethertype == ETH_IP and len(frame) >= at + 20:
        header = (frame[at] & 0x0F) * 4
        if frame[at + 9] != 6 or header < 20 or len(frame) < at + header + 20:
            return None
        sport, dport, seq, ack, _, flags = struct.unpack_from("!HHIIBB", frame, at + header)
        return TcpReply(str(ipaddress.IPv4Address(frame[at + 12:at + 16])), sport, dport,
                        flags, seq, ack, vlan)
    return None


def reset_for(reply: TcpReply, probe_mac, backend_mac, probe_ip, vlan=None) -> Optional[bytes]:
    """The RST that closes a half-open probe after the backend's SYN-ACK (tagged with
    `vlan` unless None, see tcp_segment)."""
    return tcp_segment(probe_mac, backend_mac, probe_ip, reply.ip, reply.probe_port, reply.port,
                       RST, seq=reply.ack, vlan=vlan)
