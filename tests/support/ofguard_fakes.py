"""A stand-in for Ryu's Datapath, enough for controller.ofguard's receive path."""
from ryu.controller.handler import DEAD_DISPATCHER, HANDSHAKE_DISPATCHER, MAIN_DISPATCHER
from ryu.ofproto import ofproto_protocol


class FakeBrick:
    def __init__(self, events):
        self.events = events

    def send_event_to_observers(self, ev, state):
        self.events.append(ev)

    def get_handlers(self, ev):
        return []


class FakeSocket:
    def __init__(self):
        self.shut = False

    def shutdown(self, how):
        self.shut = True


class FakeDatapath(ofproto_protocol.ProtocolDesc):
    """Negotiated OpenFlow 1.3 once it has a dpid; before that still in the handshake."""

    def __init__(self, dpid=1, address=("192.0.2.7", 40000), sock=None):
        super().__init__(4)
        self.id, self.address = dpid, address
        self.state = HANDSHAKE_DISPATCHER if dpid is None else MAIN_DISPATCHER
        self.events, self.socket = [], sock or FakeSocket()
        self.ofp_brick = FakeBrick(self.events)

    @property
    def closed(self):
        return self.state == DEAD_DISPATCHER

    def close(self):
        self.state = DEAD_DISPATCHER
