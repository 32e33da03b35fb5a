"""The learning path run against the simulator, for pipeline tests."""
from flows import l2, learning


class ReactiveController:
    """apps/l2_switch.py's packet-in and expiry handling on one switch: the very
    flows/learning.py calls the app makes, with the simulator as the switch."""

    def __init__(self, switch, settings, untagged=frozenset()):
        self.switch, self.settings, self.untagged = switch, settings, untagged
        self.macs, self.bans = learning.mac_table(settings), {}

    def send(self, pkt):
        result = self.switch.process(pkt)
        for packet_in in result.packet_ins:
            src, port, vlan = packet_in["eth_src"], packet_in["in_port"], packet_in["vlan_vid"]
            if not learning.learnable(src):
                continue
            decision = learning.packet_in(self.settings, self.macs, self.bans, src, port, vlan,
                                          self.switch.now, self.untagged)
            self.switch.apply(decision.changes)
        return result

    def expire(self, now):
        self.switch.advance(now)
        for spec in self.switch.removed:
            if spec.owner != l2.HOSTS or spec.table != "l2_src":
                continue  # what apps/l2_switch.py's _flow_removed ignores too
            entry = learning.expired_host(self.macs, *l2.host_of(spec))
            if entry is not None:
                self.switch.apply(learning.forget(self.macs, entry))
        self.switch.removed.clear()


class DatapathOnly:
    """datapath mode: nobody but the switch acts."""

    def __init__(self, switch):
        self.switch = switch

    def send(self, pkt):
        return self.switch.process(pkt)

    def expire(self, now):
        self.switch.advance(now)
