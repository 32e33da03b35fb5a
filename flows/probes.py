"""Health-probe frames the controller sends through a switch (packet-out), and what it
makes of the replies (packet-in): ARP to find a backend's MAC and port, a TCP SYN to
see that its service accepts connections. Bytes in, bytes out; no I/O."""
import ipaddress
import struct
from dataclasses import dataclass
from typing import Optional

ETH_IP, ETH_ARP = 0x0800, 0x0806
SYN, RST, ACK = 0x02, 0x04, 0x10


def _mac(text):
    return bytes.fromhex(text.replace(":", ""))


def _ip(text):
    return ipaddress.IPv4Address(text).packed


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def arp_request(src_mac, src_ip, target_ip) -> bytes:
    return (_mac("ff:ff:ff:ff:ff:ff") + _mac(src_mac) + struct.pack("!H", ETH_ARP)
            + struct.pack("!HHBBH", 1, ETH_IP, 6, 4, 1) + _mac(src_mac) + _ip(src_ip)
            + bytes(6) + _ip(target_ip))


def tcp_segment(src_mac, dst_mac, src_ip, dst_ip, sport, dport, flags, seq=0, ack=0) -> bytes:
    """An Ethernet/IPv4/TCP frame with correct checksums (no payload, no options)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    pseudo = _ip(src_ip) + _ip(dst_ip) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     _ip(src_ip), _ip(dst_ip))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return _mac(dst_mac) + _mac(src_mac) + struct.pack("!H", ETH_IP) + ip + tcp


@dataclass(frozen=True)
class ArpReply:
    ip: str
    mac: str


@dataclass(frozen=True)
class TcpReply:
    ip: str
    port: int          # the backend's (source) port
    probe_port: int    # our (destination) port
    flags: int
    seq: int
    ack: int

    @property
    def accepted(self):
        return self.flags & (SYN | ACK) == SYN | ACK


def parse_reply(frame: bytes):
    """An ArpReply, a TcpReply, or None for anything else (or anything malformed)."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == ETH_ARP and len(frame) >= 42:
        op = struct.unpack_from("!H", frame, 20)[0]
        if op != 2:
            return None
        return ArpReply(str(ipaddress.IPv4Address(frame[28:32])), frame[22:28].hex(":"))
    if ethertype == ETH_IP and len(frame) >= 34:
        header = (frame[14] & 0x0F) * 4
        if frame[23] != 6 or header < 20 or len(frame) < 14 + header + 20:
            return None
        sport, dport, seq, ack, _, flags = struct.unpack_from("!HHIIBB", frame, 14 + header)
        return TcpReply(str(ipaddress.IPv4Address(frame[26:30])), sport, dport, flags, seq, ack)
    return None


def reset_for(reply: TcpReply, probe_mac, backend_mac, probe_ip) -> Optional[bytes]:
    """The RST that closes a half-open probe after the backend's SYN-ACK."""
    return tcp_segment(probe_mac, backend_mac, probe_ip, reply.ip, reply.probe_port, reply.port,
                       RST, seq=reply.ack)
