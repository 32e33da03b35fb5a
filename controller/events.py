"""Events apps send each other (Ryu delivers them to any loaded app that observes them)."""
from ryu.controller import event


class EventPortVlans(event.EventBase):
    """The VLAN app's view of one switch, for the learning app.

    untagged: (port, VLAN) pairs whose frames leave untagged (pop before output).
    """

    def __init__(self, dpid, untagged):
        super().__init__()
        self.dpid = dpid
        self.untagged = frozenset(untagged)


class EventTopology(event.EventBase):
    """The topology app's current fabric (flows.topology.Fabric), sent whenever it
    changes: which ports are host-facing, the flood tree, shortest paths."""

    def __init__(self, fabric):
        super().__init__()
        self.fabric = fabric


class EventHostLocation(event.EventBase):
    """The learning app located a host (port set) or forgot it (port None)."""

    def __init__(self, mac, vlan, dpid, port):
        super().__init__()
        self.mac, self.vlan, self.dpid, self.port = mac, vlan, dpid, port
