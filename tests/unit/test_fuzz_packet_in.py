"""Random and mutated frames as packet-ins: no app ever raises, and each still works
afterwards (hypothesis; no switch, no root)."""
import struct

from hypothesis import HealthCheck, given, settings, strategies as st
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from controller import fastparse, pipeline
from flows import lb, lldp, probes, topology
from tests.support import lb_app as lb_tests
from tests.support.packets import packet_in as packet_in_bytes, oxm
from tests.support.l2_app import H1, H2, connect, eth, flow_mods, make_app
from tests.support.wire import DP
from tests.support.topology_app import bring_up as topology_bring_up
from tests.support.fakeswitch import run_inline

VALID = [eth("ff:ff:ff:ff:ff:ff", H1), eth(H2, H1, vlan=10), lldp.frame(1, 2),
         lb_tests.arp_reply("10.0.0.11", "02:00:00:00:00:02"),
         probes.tcp_segment("02:00:00:00:00:02", lb.PROBE_MAC, "10.0.0.11", "10.0.0.254",
                            8080, 40000, 0x12),
         b"\x81\x00" * 10]


@st.composite
def frames(draw):
    """Garbage, or a valid frame with bytes flipped and/or cut short."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=160))
    frame = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 6))):
        if frame:
            frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
    return bytes(frame[:draw(st.integers(0, len(frame)))])


TABLES = st.sampled_from([0, pipeline.table_id("vip"), pipeline.table_id("l2_src"), 9])
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def event(datapath, data, table_id, in_port, cookie=0):
    msg = parser.OFPPacketIn(datapath, buffer_id=ofp.OFP_NO_BUFFER, total_len=len(data),
                             reason=ofp.OFPR_ACTION, table_id=table_id, cookie=cookie,
                             match=parser.OFPMatch(in_port=in_port), data=data)
    return ofp_event.EventOFPPacketIn(msg)


@FUZZ
@given(batch=st.lists(st.tuples(frames(), TABLES, st.integers(1, 2**32 - 1)), max_size=20))
def test_learning_app_survives_anything_and_still_learns(monkeypatch, batch):
    for mode in ("reactive", "datapath"):
        app = make_app(monkeypatch, mode=mode)
        datapath = connect(app)
        for data, table, port in batch:
            app._packet_in(event(datapath, data, table, port))
        datapath.sent.clear()
        app._packet_in(event(datapath, eth(H2, "02:00:00:00:99:01"),
                             pipeline.table_id("l2_src"), 3))
        assert bool(flow_mods(datapath)) == (mode == "reactive")


@FUZZ
@given(batch=st.lists(st.tuples(frames(), st.integers(1, 3)), max_size=20))
def test_topology_app_survives_anything(monkeypatch, batch):
    from tests.support.topology_app import Clock
    from apps import topology as topology_app
    from controller import config, rest
    monkeypatch.setattr(topology_app.time, "monotonic", Clock())
    monkeypatch.setattr(config, "load_file", lambda path=None: {})
    run_inline(monkeypatch, topology_app.hub)
    app = topology_app.Topology(wsgi=rest.WSGIApplication())
    monkeypatch.setattr(app, "send_event_to_observers", lambda ev: None)
    topology_bring_up(app, 1)
    two = topology_bring_up(app, 2)
    cookie = pipeline.cookie(topology.DISCOVERY)
    for data, port in batch:
        app._packet_in(event(two, data, 0, port, cookie))
    app._packet_in(event(two, lldp.frame(1, 1), 0, 1, cookie))
    assert topology.Link((1, 1), (2, 1)) in app.fabric.links


@FUZZ
@given(batch=st.lists(st.tuples(frames(), st.integers(1, 20)), max_size=20))
def test_load_balancer_app_survives_anything(monkeypatch, tmp_path_factory, batch):
    app = lb_tests.make_app(monkeypatch, tmp_path_factory.mktemp("lb"))
    datapath = lb_tests.connect(app)
    for data, port in batch:
        app._packet_in(lb_tests.packet_in(datapath, port, data))


@FUZZ
@given(fields=st.binary(max_size=40), data=st.binary(max_size=80))
def test_fast_packet_in_parser_raises_only_what_ryus_raises(fields, data):
    buf = bytearray(packet_in_bytes(oxm(0, 1, 4) + fields, data))
    for cut in (len(buf), len(buf) // 2):
        part = buf[:cut]
        struct.pack_into("!H", part, 2, len(part))
        try:
            fastparse.parse_packet_in(DP, 4, ofp.OFPT_PACKET_IN, len(part), 1, part)
        except Exception as err:  # noqa: BLE001  (compared with Ryu's own behaviour)
            try:
                fastparse._ryu_parser(DP, 4, ofp.OFPT_PACKET_IN, len(part), 1, part)
            except Exception as ryus:  # noqa: BLE001
                assert type(ryus) is type(err)
            else:
                raise AssertionError(f"fast parser raised {err!r} where Ryu's did not")
