"""The learning path run against the simulator, for pipeline tests."""
from flows import l2
from flows.mac_table import MOVED, NEW, MacTable
from flows.spec import UNTAGGED, is_multicast_mac


class ReactiveController:
    """What apps/l2_switch.py does with a packet-in, minus Ryu: the same pure calls."""

    def __init__(self, switch, settings, untagged=frozenset()):
        self.switch, self.settings, self.untagged = switch, settings, untagged
        self.macs = MacTable(settings.max_macs)

    def send(self, pkt):
        result = self.switch.process(pkt)
        for packet_in in result.packet_ins:
            src, port, vlan = packet_in["eth_src"], packet_in["in_port"], packet_in["vlan_vid"]
            if is_multicast_mac(src):
                continue
            verdict, previous = self.macs.observe(src, port, vlan, self.switch.now)
            changes = []
            if verdict == MOVED:
                changes += l2.forget_host(src, previous.port, vlan)
            if verdict in (NEW, MOVED):
                changes += l2.learn_host(src, port, vlan, self.settings.idle_timeout,
                                         untagged_egress=(port, vlan) in self.untagged)
            self.switch.apply(changes)
        return result

    def expire(self, now):
        self.switch.advance(now)
        for spec in self.switch.removed:
            mac, port = spec.match.get("eth_src"), spec.match.get("in_port")
            vlan = None if spec.match.get("vlan_vid") == UNTAGGED else spec.match.get("vlan_vid")
            if self.macs.remove(mac, port, vlan):
                self.switch.apply(l2.forget_host(mac, port, vlan))
        self.switch.removed.clear()


class DatapathOnly:
    """datapath mode: nobody but the switch acts."""

    def __init__(self, switch):
        self.switch = switch

    def send(self, pkt):
        return self.switch.process(pkt)

    def expire(self, now):
        self.switch.advance(now)
