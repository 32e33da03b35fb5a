"""/metrics per switch (controller/metrics.py, controller/ofcounters.py): the dp_name
label from a port-description reply, OpenFlow errors by type and code, connections and
disconnections, config reloads, the packet-in handling latency on both paths, and a
scrape that sends nothing to any switch."""
import struct
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ryu.controller import handler, ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from apps import l2_switch
from controller import config, fastparse, fastpath, metrics, ofcounters, ofguard, pipeline
from tests.support import l2_app as l2_tests
from tests.support.fakeswitch import run_inline
from tests.support.l2_app import call, connect, eth, make_app
from tests.support.ofguard_fakes import FakeDatapath
from tests.support.vlan_app import SECTION, bring_up, make_vlan_app



@pytest.fixture(autouse=True)
def counted_parsers(monkeypatch):
    """The parsers importing the app base installs (a test of Ryu's own parser may have
    put Ryu's back)."""
    ofcounters.install()
    for msg_type, parse in ((ofp.OFPT_PACKET_IN, fastparse.counted_packet_in),
                            (ofp.OFPT_ERROR, ofcounters.counted_error),
                            (ofp.OFPT_MULTIPART_REPLY, ofcounters.named_multipart)):
        monkeypatch.setitem(parser._MSG_PARSERS, msg_type, parse)


def scraped():
    """{(name, labels as a sorted tuple): value} of the whole registry."""
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def header(msg_type, body, xid=9):
    return struct.pack("!BBHI", 4, msg_type, 8 + len(body), xid) + body


def port_desc_reply(ports):
    """A PORT_DESC multipart reply of [(number, name)]."""
    body = struct.pack("!HH4x", ofp.OFPMP_PORT_DESC, 0)
    for number, name in ports:
        body += struct.pack(ofp.OFP_PORT_PACK_STR, number, b"\x02\0\0\0\0\x01",
                            name.encode(), 0, 0, 0, 0, 0, 0, 0, 0)
    return header(ofp.OFPT_MULTIPART_REPLY, body)


def error(error_type, code, data=b"\x04\x0e\x00\x08\x00\x00\x00\x05"):
    return header(ofp.OFPT_ERROR, struct.pack("!HH", error_type, code) + data)


def test_a_port_description_reply_names_the_switch_in_every_per_switch_metric():
    datapath = FakeDatapath(dpid=0x51)
    assert metrics.switch_labels(0x51) == ["0000000000000051", ""]   # unknown: empty
    metrics.PACKET_INS.inc(0x51)
    assert ofguard.handle(datapath, port_desc_reply([(1, "s1-eth1"), (ofp.OFPP_LOCAL, "s1")]))
    assert isinstance(datapath.events[-1].msg, parser.OFPPortDescStatsReply)  # apps get it
    assert scraped()[("sdn_packet_ins_total", (("dp_name", "s1"), ("dpid", "0000000000000051")))] \
        == 1   # counted before the name was known, labelled with it
    # a reply without the LOCAL port (or another multipart reply) changes no name
    assert ofguard.handle(datapath, port_desc_reply([(2, "s1-eth2")]))
    assert metrics.switch_labels(0x51) == ["0000000000000051", "s1"]


def test_errors_are_counted_by_switch_type_and_code_and_a_bogus_one_breaks_nothing(monkeypatch):
    datapath = FakeDatapath(dpid=0x52)
    before = dict(metrics.OF_ERRORS.counts)
    assert ofguard.handle(datapath, error(ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_TABLE_FULL))
    assert ofguard.handle(datapath, error(0x7777, 0x9999, b"junk"))   # no such type
    assert ofguard.handle(datapath, error(ofp.OFPET_BAD_MATCH, 0x4242, b""))   # no such code
    assert not datapath.closed
    changed = {key: value - before.get(key, 0) for key, value in metrics.OF_ERRORS.counts.items()
               if value != before.get(key, 0)}
    assert changed == {(0x52, "OFPET_FLOW_MOD_FAILED", "OFPFMFC_TABLE_FULL"): 1,
                       (0x52, "unknown", "unknown"): 1,
                       (0x52, "OFPET_BAD_MATCH", "unknown"): 1}
    samples = scraped()
    assert samples[("sdn_of_errors_total", (("code", "unknown"), ("dp_name", ""),
                                            ("dpid", "0000000000000052"),
                                            ("type", "unknown")))] == 1
    # the apps still get each error as an event, and their handler logs it
    app = make_app(monkeypatch)
    for ev in datapath.events:
        ev.msg.datapath = l2_tests.FakeDatapath(0x52)
        app._log_switch_error(ev)
    assert [ev.msg.type for ev in datapath.events] == [ofp.OFPET_FLOW_MOD_FAILED, 0x7777,
                                                       ofp.OFPET_BAD_MATCH]


def test_an_experimenter_error_is_counted_by_type_only():
    assert ofcounters.error_names(ofp.OFPET_EXPERIMENTER, 1234) == ("OFPET_EXPERIMENTER",
                                                                    "experimenter")
    assert ofcounters.error_names(ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE) == (
        "OFPET_BAD_REQUEST", "OFPBRC_IS_SLAVE")


def features(datapath):
    return ofp_event.EventOFPSwitchFeatures(l2_tests.Features(datapath))


def gone(datapath):
    ev = ofp_event.EventOFPStateChange(datapath)
    ev.state = DEAD_DISPATCHER
    return ev


def test_a_connection_and_its_end_are_counted_once_however_many_apps_see_them(monkeypatch):
    l2 = make_app(monkeypatch)
    other = make_app(monkeypatch, l2.runtime)   # a second app of the same ryu-manager
    for app in (l2, other):
        handler.register_instance(app)
    first, second = l2_tests.FakeDatapath(0x53), l2_tests.FakeDatapath(0x53)
    connected, ended = metrics.CONNECTIONS.value(0x53), metrics.DISCONNECTIONS.value(0x53)
    for app in (l2, other):
        app.get_handlers(features(first))
    assert metrics.CONNECTIONS.value(0x53) == connected + 1
    for app in (l2, other):   # it reconnects before the old connection's end is seen
        app.get_handlers(features(second))
        app.get_handlers(gone(first), DEAD_DISPATCHER)
        app.get_handlers(gone(first), DEAD_DISPATCHER)
    assert metrics.CONNECTIONS.value(0x53) == connected + 2
    assert metrics.DISCONNECTIONS.value(0x53) == ended + 1
    never = l2_tests.FakeDatapath(0x53)   # ended in the handshake: neither
    l2.get_handlers(gone(never), DEAD_DISPATCHER)
    assert metrics.DISCONNECTIONS.value(0x53) == ended + 1
    samples = scraped()
    assert samples[("sdn_switch_connections_total",
                    (("dp_name", ""), ("dpid", "0000000000000053")))] == connected + 2


def test_the_runtime_asks_each_new_connection_for_its_ports_once(monkeypatch):
    """Whichever apps run (l2_switch alone asks for none): one port-description request
    per connection, however many apps see it connect (the reply names the switch)."""
    l2 = make_app(monkeypatch)
    other = make_app(monkeypatch, l2.runtime)
    for app in (l2, other):
        handler.register_instance(app)
    datapath = l2_tests.FakeDatapath(0x54)
    for app in (l2, other):
        app.get_handlers(features(datapath))
    asked = [m for m in datapath.sent if isinstance(m, parser.OFPPortDescStatsRequest)]
    assert len(asked) == 1
    again = l2_tests.FakeDatapath(0x54)      # a new connection of the same switch: again
    l2.get_handlers(features(again))
    assert [type(m) for m in again.sent] == [parser.OFPPortDescStatsRequest]


def test_config_reloads_are_counted_by_outcome(monkeypatch, tmp_path):
    app = make_vlan_app(monkeypatch, tmp_path, SECTION)
    applied = metrics.CONFIG_RELOADS.labels("applied")._value.get()
    refused = metrics.CONFIG_RELOADS.labels("refused")._value.get()
    monkeypatch.setattr(config, "load_file", lambda path=None: {"vlan": {"portz": []}})
    assert call(app, "POST", "/v1/config/reload")[0] == 400
    monkeypatch.setattr(config, "load_file", lambda path=None: {"vlan": SECTION})
    assert call(app, "POST", "/v1/config/reload")[0] == 200
    samples = scraped()
    assert samples[("sdn_config_reloads_total", (("outcome", "refused"),))] == refused + 1
    assert samples[("sdn_config_reloads_total", (("outcome", "applied"),))] == applied + 1


def raw_packet_in(in_port, data):
    oxm = struct.pack("!HBBI", 0x8000, 0, 4, in_port)
    match = struct.pack("!HH", 1, 4 + len(oxm)) + oxm + bytes(4)
    body = struct.pack("!IHBBQ", ofp.OFP_NO_BUFFER, len(data), ofp.OFPR_ACTION,
                       pipeline.table_id("l2_src"), 0) + match + bytes(2) + data
    return header(ofp.OFPT_PACKET_IN, body)


class Brick:
    observers = {}

    def __init__(self):
        self.events = []

    def send_event_to_observers(self, ev, state):
        self.events.append(ev)

    def get_handlers(self, ev):
        return []


def test_the_packet_in_latency_is_observed_on_the_fast_path_and_on_ryus(monkeypatch):
    app = make_app(monkeypatch)
    run_inline(monkeypatch, l2_switch.hub)
    handler.register_instance(app)
    datapath = connect(app, 0x57)
    datapath.send, datapath.ofp_brick = datapath.send_packed, Brick()
    app.switches[0x57].reconciled = True
    fast, event = (metrics.PACKET_IN_LATENCY.count(path) for path in ("fast_path", "event"))
    # one read of two packet-ins, as the receive loop handles it, stamped as it does
    buf = bytearray(raw_packet_in(1, eth("ff:ff:ff:ff:ff:ff", "02:00:00:00:57:01")) +
                    raw_packet_in(2, eth("ff:ff:ff:ff:ff:ff", "02:00:00:00:57:02")))
    datapath.sdn_read_at = 0.0   # long ago: the observations land in the top bucket
    try:
        assert ofguard._messages(datapath, buf) == len(buf)
    finally:
        fastpath.flush(datapath)
    assert metrics.PACKET_IN_LATENCY.count("fast_path") == fast + 2
    assert metrics.PACKET_IN_LATENCY.series["fast_path"][0][-1] >= 2
    assert {e.mac for e in app.switches[0x57].macs.entries()} == {"02:00:00:00:57:01",
                                                                 "02:00:00:00:57:02"}
    # the same on Ryu's path: the event is stamped, the app's handler observes its end
    monkeypatch.setattr(fastpath, "enabled", False)
    datapath.sdn_read_at = time.perf_counter()
    assert ofguard.handle(datapath, raw_packet_in(3, eth("ff:ff:ff:ff:ff:ff",
                                                         "02:00:00:00:57:03")))
    ev, = datapath.ofp_brick.events
    for run in app.get_handlers(ev, MAIN_DISPATCHER):
        run(ev)
    assert metrics.PACKET_IN_LATENCY.count("event") == event + 1
    assert metrics.PACKET_IN_LATENCY.count("fast_path") == fast + 2
    assert "02:00:00:00:57:03" in {e.mac for e in app.switches[0x57].macs.entries()}
    samples = scraped()
    assert samples[("sdn_packet_in_handling_seconds_count", (("path", "event"),))] == event + 1
    assert samples[("sdn_packet_in_handling_seconds_bucket",
                    (("le", "+Inf"), ("path", "fast_path")))] == fast + 2


def test_a_scrape_sends_nothing_to_any_switch_and_counts_the_entries_reconciled(
        monkeypatch, tmp_path):
    vlan = make_vlan_app(monkeypatch, tmp_path, SECTION)
    l2 = make_app(monkeypatch)
    run_inline(monkeypatch, l2_switch.hub)
    datapath = bring_up(vlan, dpid=0x58)
    l2_datapath = connect(l2, 0x59)
    sent = (len(datapath.sent), len(l2_datapath.sent))
    assert sent[0] > 0
    samples = scraped()
    assert (len(datapath.sent), len(l2_datapath.sent)) == sent   # nothing asked, nothing sent
    entries = {}
    for (name, labels), value in samples.items():
        labels = dict(labels)
        if name == "sdn_flows" and labels["app"] == "vlan" and labels["dpid"] == \
                "0000000000000058":
            entries[int(labels["table"])] = value
    held = {}
    for stat in datapath.flows.values():
        if pipeline.owner_of(stat.cookie) is not None and \
                pipeline.owner_of(stat.cookie).app == "vlan":
            held[stat.table_id] = held.get(stat.table_id, 0) + 1
    assert entries == held and sum(held.values()) > 0
