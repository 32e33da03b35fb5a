"""Conntrack's connections as OVS prints them (`ovs-appctl dpctl/dump-conntrack`):

    tcp,orig=(src=10.0.0.2,dst=10.0.0.1,sport=40000,dport=80),reply=(src=10.0.0.1,
        dst=10.0.0.2,sport=80,dport=40000),zone=16384,mark=1,protoinfo=(state=ESTABLISHED)

(one line each; zone and mark are left out when 0). Read by the security groups' cut
preview (flows/security_cuts.py) and by the trace (controller/trace.py), which shows a
live connection's entry and mark.
"""
import ipaddress
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

_PAIRS = re.compile(r"(\w+)=([^,()]+)")
Tuple4 = Tuple[str, str, Optional[int], Optional[int]]   # src, dst, sport, dport


@dataclass(frozen=True)
class Connection:
    protocol: str          # tcp, udp, icmp, icmpv6 or whatever name conntrack prints
    src: str
    dst: str
    sport: Optional[int]
    dport: Optional[int]
    zone: int
    mark: int = 0
    state: Optional[str] = None
    reply: Optional[Tuple4] = None     # the reply direction (NAT shows here)

    @property
    def original(self) -> Tuple4:
        return self.src, self.dst, self.sport, self.dport

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "src": self.src, "dst": self.dst,
                "sport": self.sport, "dport": self.dport, "zone": self.zone,
                "mark": self.mark, "state": self.state}


def _section(line: str, name: str) -> Optional[Dict[str, str]]:
    found = re.search(r"\b" + name + r"=\(([^)]*)\)", line)
    return dict(_PAIRS.findall(found.group(1))) if found else None


def _tuple(section: Dict[str, str]) -> Tuple4:
    """ValueError unless both addresses and any port read as such."""
    return (str(ipaddress.ip_address(section["src"])), str(ipaddress.ip_address(section["dst"])),
            int(section["sport"]) if "sport" in section else None,
            int(section["dport"]) if "dport" in section else None)


def parse(text: str) -> List[Connection]:
    """Every line that reads as a connection; the others are left out."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        orig, reply = _section(line, "orig"), _section(line, "reply")
        try:
            src, dst, sport, dport = _tuple(orig or {})
            back = _tuple(reply) if reply else None
            fields = dict(_PAIRS.findall(re.sub(r"\w+=\([^)]*\)", "", line)))
            zone, mark = int(fields.get("zone", "0")), int(fields.get("mark", "0"), 0)
        except (KeyError, ValueError):
            continue
        state = (_section(line, "protoinfo") or {}).get("state")
        out.append(Connection(line.split(",", 1)[0], src, dst, sport, dport, zone, mark,
                              state, back))
    return out
