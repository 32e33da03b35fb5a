"""A Ryu app for bench/flow_install.py: on connect, install N learning-style entries
through the product's own path (flows/ specs -> ofcompile -> one batched push) and
time it until the switch confirms with a barrier reply."""
import os
import time

from ryu.controller import ofp_event
from ryu.controller.handler import CONFIG_DISPATCHER, set_ev_cls
from ryu.lib import hub

from controller import southbound
from flows import l2
from flows.spec import FlowDelete, FlowSpec, Match, Output

COUNT = int(os.environ.get("SDN_BENCH_FLOWS", "10000"))


def bench_flows(count):
    """l2_dst entries: untagged frames to MAC n go out of port 1 + n % 4."""
    return [FlowSpec("l2_dst", l2.HOST_PRIORITY,
                     Match.of(vlan_vid="untagged", eth_dst="02:be:%02x:%02x:%02x:%02x" % (
                         n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)),
                     l2.HOSTS, actions=(Output(1 + n % 4),)) for n in range(count)]


class FlowInstallBench(southbound.SdnApp):
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _connected(self, ev):
        hub.spawn(self._install, ev.msg.datapath)

    def _install(self, datapath):
        hub.sleep(1.0)  # past the handshake
        self.push(datapath, [FlowDelete(l2.HOSTS)])
        self.confirm(datapath)
        start = time.monotonic()
        self.push(datapath, bench_flows(COUNT), barrier=False)
        self.confirm(datapath, timeout=120)
        self.logger.info("FLOW_INSTALL flows=%d seconds=%.4f", COUNT, time.monotonic() - start)
