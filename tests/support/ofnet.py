"""Simulated switches (tests/support/ofsim.py) wired together, for fabric tests."""
from dataclasses import dataclass
from typing import Dict, List, Tuple

from tests.support.ofsim import Switch


@dataclass
class Delivery:
    received: Dict[str, List[dict]]   # host -> frames it got
    link_frames: int                  # frames that crossed a switch-to-switch link
    packet_ins: List[Tuple[int, dict]]
    storm: bool                       # the cap on link frames was hit: a loop


class Network:
    """Simulated switches wired together, for fabric tests: `links` pairs (dpid, port)
    ends, `hosts` names a host at a (dpid, port). A frame is carried hop by hop until
    nothing is left in flight or `max_link_frames` say it is looping."""

    def __init__(self, switches: Dict[int, Switch], links, hosts: Dict[str, Tuple[int, int]]):
        self.switches = switches
        self.wires = {}
        for one, other in links:
            self.wires[one], self.wires[other] = other, one
        self.hosts = dict(hosts)
        self.host_at = {end: name for name, end in hosts.items()}

    def send(self, host, pkt, max_link_frames=500) -> Delivery:
        delivery = Delivery({}, 0, [], False)
        in_flight = [(*self.hosts[host], dict(pkt))]
        while in_flight:
            dpid, port, frame_ = in_flight.pop(0)
            result = self.switches[dpid].process(dict(frame_, in_port=port))
            delivery.packet_ins += [(dpid, p) for p in result.packet_ins]
            for out, frames in result.outputs.items():
                for sent in frames:
                    if (dpid, out) in self.host_at:
                        delivery.received.setdefault(self.host_at[(dpid, out)], []).append(sent)
                    elif (dpid, out) in self.wires:
                        delivery.link_frames += 1
                        if delivery.link_frames > max_link_frames:
                            delivery.storm = True
                            return delivery
                        in_flight.append((*self.wires[(dpid, out)], sent))
        return delivery
