"""An ARP reply built in place by the switch: the request's fields swapped and the
answer filled in, sent back where it came from (overlay L2 population, load-balancer
VIPs)."""
from flows.spec import IN_PORT, Match, Move, Output, SetField

ARP = 0x0806


def request_for(ip: str, **more) -> Match:
    """Matches ARP requests for `ip` (plus `more` fields, e.g. a VLAN)."""
    return Match.of(eth_type=ARP, arp_op=1, arp_tpa=ip, **more)


def reply_actions(ip: str, mac: str, out=IN_PORT):
    return (Move("eth_src", "eth_dst"), SetField("eth_src", mac), SetField("arp_op", 2),
            Move("arp_sha", "arp_tha"), Move("arp_spa", "arp_tpa"),
            SetField("arp_sha", mac), SetField("arp_spa", ip), Output(out))
