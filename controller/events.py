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
