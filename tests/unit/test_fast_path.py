"""The packet-in fast path (controller/fastpath.py) and its precompiled flow-mods
(controller/oftemplate.py): the same bytes as Ryu's path for the same packet-ins, and
no input from a switch that makes it raise."""
import random
import struct

import pytest
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import MAIN_DISPATCHER
from ryu.lib import hub

from controller import fastpath, ofcheck, oftemplate, pipeline
from flows import l2
from tests.support.fakeswitch import run_inline
from tests.support.l2_app import FakeDatapath, connect, eth, make_app, packet_in

L2_SRC = pipeline.table_id("l2_src")


class Brick:
    """Ryu's ofp_event brick, as far as the fast path asks it: who observes
    packet-ins, and the events it hands them."""

    def __init__(self, observers=()):
        self.observers = {ofp_event.EventOFPPacketIn: {n: {MAIN_DISPATCHER} for n in observers}}
        self.sent = []

    def send_event(self, name, ev, state):
        self.sent.append((name, ev))


def raw_packet_in(in_port, data, table_id=L2_SRC, xid=7, total_len=None, extra_oxm=b""):
    """An OpenFlow 1.3 packet-in as OVS sends it (an in_port match, no buffer)."""
    oxm = struct.pack("!HBBI", 0x8000, 0, 4, in_port) + extra_oxm
    match = struct.pack("!HH", 1, 4 + len(oxm)) + oxm
    match += bytes(-len(match) % 8)
    body = struct.pack("!IHBBQ", 0xFFFFFFFF, len(data) if total_len is None else total_len,
                       1, table_id, 0x1234) + match + bytes(2) + data
    return struct.pack("!BBHI", 4, 10, 8 + len(body), xid) + body


def fast_switch(app, dpid=1, brick=None):
    """A connected switch whose sends are bytes (as Ryu's Datapath), with a brick."""
    datapath = connect(app, dpid)
    datapath.send = datapath.send_packed
    datapath.ofp_brick = brick or Brick([app.name])
    datapath.wire.clear()
    return datapath


def offer(datapath, raw):
    """One read of one packet-in, as the receive loop handles it: True when the fast
    path took it (False: it goes the normal way)."""
    buf = bytearray(raw)
    queued = fastpath.packet_in_raw(datapath, buf, 0, len(raw))
    left = fastpath.run_pending(datapath, buf)
    fastpath.flush(datapath)
    assert left in ([], [raw])
    return queued and not left


def mac(rng):
    return ":".join(f"{b:02x}" for b in [rng.randrange(256) & 0xFE] +
                    [rng.randrange(256) for _ in range(5)])


# --- precompiled flow-mods --------------------------------------------------------------

@pytest.mark.parametrize("idle", [1, 300, 65535])
def test_templates_give_the_builders_bytes_for_any_values(monkeypatch, idle):
    app, rng = make_app(monkeypatch, idle_timeout=idle), random.Random(idle)
    ports = [1, 2, 255, 256, 65535, 0xFFFFFF00, 0xFFFFFFFE, 0x02cb0000] + \
        [rng.randrange(1, 0xFFFFFF00) for _ in range(40)]
    vlans = [None, 0, 1, 0xFF, 0x100, 4094, 4095] + [rng.randrange(1, 4096) for _ in range(20)]
    checked = 0
    for port in ports:
        for vlan in rng.sample(vlans, 8):
            for untagged_egress in (False, True):
                host = mac(rng)
                datapath = FakeDatapath(1)
                datapath.xid = first = rng.randrange(0, 0xFFFFFFFF)
                template = app._learn_template(datapath, vlan, untagged_egress)
                rendered = template.render_encoded(
                    (oftemplate.mac_bytes(host), oftemplate.port_bytes(port),
                     oftemplate.vid_bytes(vlan or 0)),
                    oftemplate.next_xids(datapath, template.messages))
                specs = l2.learn_host(host, port, vlan, idle, untagged_egress)
                expected = b"".join(oftemplate.compiled(FakeDatapath(1), specs,
                                                        (first + 1) & 0xFFFFFFFF))
                assert bytes(rendered) == expected, (host, port, vlan, untagged_egress)
                assert datapath.xid == (first + len(specs)) & 0xFFFFFFFF
                checked += 1
    assert checked == len(ports) * 16


def test_a_builder_whose_value_changes_more_than_its_place_is_not_templated():
    def build(mac, port):   # the port also decides the priority: not a fixed layout
        return [l2.learn_host(mac, port, None, 300)[0].__class__(
            "l2_src", 100 + port % 7, l2.learn_host(mac, port, None, 300)[0].match,
            l2.HOSTS)]
    slots = {"mac": oftemplate.Slot(oftemplate.mac_bytes, "02:11:22:33:44:55",
                                    "0e:ee:dd:cc:bb:aa"),
             "port": oftemplate.Slot(oftemplate.port_bytes, 0x11223344, 0x22334455)}
    with pytest.raises(oftemplate.TemplateError):
        oftemplate.FlowTemplate(FakeDatapath(1), build, slots, {"mac": "02:00:00:00:00:09",
                                                               "port": 3})
    templates = oftemplate.Templated(FakeDatapath(1), lambda key: (build, slots, {
        "mac": "02:00:00:00:00:09", "port": 3}))
    assert templates.get("any") is None


# --- the same bytes as Ryu's path ---------------------------------------------------------

def _traffic(rng):
    """Packet-ins of every kind learning meets: new hosts (untagged, tagged, VLAN 0),
    repeats, moves, flaps, a port over its MAC cap, multicast and short frames."""
    hosts = [mac(rng) for _ in range(12)]
    frames = []
    for _ in range(300):
        kind = rng.random()
        src = rng.choice(hosts)
        vlan = rng.choice([None, None, 0, 10, 4000])
        port = rng.choice([1, 2, 3, 4, 0xFFFFFFFE])
        if kind < 0.05:
            frames.append((port, b"\x01\x02\x03"))        # too short to be a frame
        elif kind < 0.1:
            frames.append((port, eth("ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", vlan)))
        elif kind < 0.3:
            frames.append((port, eth("02:dd:00:00:00:01", mac(rng), vlan)))   # always new
        else:
            frames.append((port, eth("02:dd:00:00:00:01", src, vlan)))
    return frames


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_fast_path_sends_exactly_what_ryus_path_sends(monkeypatch, seed):
    run_inline(monkeypatch, hub)
    settings = dict(max_macs=40, max_macs_per_port=15, flap_moves=3, flap_window_s=60,
                    ban_s=30)
    normal_app, fast_app = make_app(monkeypatch, **settings), make_app(monkeypatch, **settings)
    normal = connect(normal_app)
    normal.wire.clear()
    fast = fast_switch(fast_app)
    untagged = frozenset({(2, 10), (3, 0)})   # as the VLAN app would say (untagged egress)
    normal_app.switches[1].untagged = fast_app.switches[1].untagged = untagged
    rng, read = random.Random(seed), bytearray()
    for port, frame in _traffic(rng):
        normal_app._packet_in(packet_in(normal, port, frame))
        read += raw_packet_in(port, frame[:128], total_len=len(frame))
        if rng.random() < 0.2:   # reads of one to a dozen packet-ins, handled together
            _read(fast, read)
            read = bytearray()
    _read(fast, read)
    assert len(normal.wire) > 2000   # it learned, moved, banned: there is something to compare
    assert bytes(fast.wire) == bytes(normal.wire)
    for name in ("packet_ins", "not_learned"):
        assert getattr(fast_app.switches[1], name) == getattr(normal_app.switches[1], name)
    assert fast_app.switches[1].bans.keys() == normal_app.switches[1].bans.keys()
    def hosts(app):
        return sorted((m["mac"], m["port"], -1 if m["vlan"] is None else m["vlan"]) for m in app.learned_macs(1))
    assert hosts(fast_app) == hosts(normal_app)


def _read(datapath, chunk):
    offset = 0
    while offset < len(chunk):
        length = struct.unpack_from("!H", chunk, offset + 2)[0]
        assert fastpath.packet_in_raw(datapath, chunk, offset, length)
        offset += length
    assert fastpath.run_pending(datapath, chunk) == []
    fastpath.flush(datapath)


def test_replies_of_one_read_leave_in_one_send(monkeypatch):
    app = make_app(monkeypatch)
    datapath = fast_switch(app)
    sends = []
    datapath.send = lambda buf: sends.append(bytes(buf)) or datapath.send_packed(buf)
    chunk = bytearray()
    for n in range(1, 6):
        chunk += raw_packet_in(1, eth("02:dd:00:00:00:01", f"02:00:00:00:00:0{n}"))
    offset = 0
    while offset < len(chunk):
        length = struct.unpack_from("!H", chunk, offset + 2)[0]
        assert fastpath.packet_in_raw(datapath, chunk, offset, length)
        offset += length
    assert sends == [] and not app.switches[1].macs   # queued, handled together
    assert fastpath.run_pending(datapath, chunk) == []
    assert sends == []
    fastpath.flush(datapath)
    assert len(sends) == 1 and len(app.switches[1].macs) == 5
    assert sum(1 for m in datapath.sent if m.msg_type == 14) == 10   # two entries per host


def test_a_slave_writes_nothing_and_counts_what_it_held_back(monkeypatch):
    app = make_app(monkeypatch)
    datapath = fast_switch(app)
    monkeypatch.setattr(app.runtime, "may_write", lambda dpid: False)
    assert offer(datapath, raw_packet_in(1, eth("02:dd:00:00:00:01", "02:00:00:00:00:01")))
    assert datapath.wire == b"" and app.runtime.refused[1] == 2


def test_what_the_app_does_not_serve_takes_ryus_path(monkeypatch):
    app = make_app(monkeypatch)
    datapath = fast_switch(app)
    frame = eth("02:dd:00:00:00:01", "02:00:00:00:00:01")
    assert not offer(datapath, raw_packet_in(1, frame, table_id=pipeline.table_id("ingress")))
    stranger = FakeDatapath(9)   # never connected to the app
    stranger.ofp_brick = Brick()
    assert not offer(stranger, raw_packet_in(1, frame))
    app.fabric = object()   # a fabric's hosts are routed across switches: Ryu's path
    assert not offer(datapath, raw_packet_in(1, frame))
    app.fabric = None
    fastpath.enabled = False
    try:
        assert not offer(datapath, raw_packet_in(1, frame))
    finally:
        fastpath.enabled = True
    assert datapath.wire == b"" and not app.switches[1].macs


def test_other_apps_that_want_the_packet_in_still_get_ryus_event(monkeypatch):
    app = make_app(monkeypatch)

    class Ours:   # one of our apps, reading only its own table's packet-ins
        def packet_in_table_ids(self):
            return frozenset({pipeline.table_id("vip")})

    monkeypatch.setitem(app_manager.SERVICE_BRICKS, "ours", Ours())
    monkeypatch.setitem(app_manager.SERVICE_BRICKS, "stock", object())   # no declaration
    brick = Brick([app.name, "ours", "stock"])
    datapath = fast_switch(app, brick=brick)
    frame = eth("02:dd:00:00:00:01", "02:00:00:00:00:01")
    assert offer(datapath, raw_packet_in(5, frame, xid=99))
    assert [name for name, _ in brick.sent] == ["stock"]
    msg = brick.sent[0][1].msg
    assert (msg.xid, msg.table_id, msg.match["in_port"], msg.data) == (99, L2_SRC, 5, frame)
    assert len(app.switches[1].macs) == 1


def test_a_match_ryu_must_parse_is_still_served_in_order(monkeypatch):
    """A packet-in whose match is not plain (here an NXM register: tunnel ports add
    such fields) is parsed by Ryu and offered again, not queued behind the others."""
    app = make_app(monkeypatch)
    datapath = fast_switch(app)
    reg = struct.pack("!HBBI", 0x0001, 1 << 1, 4, 7)
    raw = raw_packet_in(3, eth("02:dd:00:00:00:01", "02:00:00:00:00:01"), extra_oxm=reg)
    assert not fastpath.packet_in_raw(datapath, bytearray(raw), 0, len(raw))
    version, msg_type, msg_len, xid = struct.unpack_from("!BBHI", raw)
    msg = datapath.ofproto_parser.msg_parser(datapath, version, msg_type, msg_len, xid, raw)
    assert fastpath.packet_in_msg(datapath, msg)
    fastpath.flush(datapath)
    assert [e.port for e in app.switches[1].macs.entries()] == [3]


def test_a_handler_that_raises_drops_that_reads_packet_ins_only(monkeypatch, caplog):
    app = make_app(monkeypatch)
    datapath = fast_switch(app)
    calls = []

    def broken(datapath, packet_ins, sink):
        calls.append(packet_ins[0][0])
        if packet_ins[0][0] == 1:
            raise RuntimeError("boom")
        return app._fast_packet_ins(datapath, packet_ins, sink)
    fastpath.serve(app, L2_SRC, broken, oftemplate.pack, oftemplate.next_xids,
                   lambda owners: None)
    assert offer(datapath, raw_packet_in(1, eth("02:dd:00:00:00:01", "02:00:00:00:00:01")))
    assert offer(datapath, raw_packet_in(2, eth("02:dd:00:00:00:01", "02:00:00:00:00:02")))
    assert calls == [1, 2] and "boom" in caplog.text
    assert [e.port for e in app.switches[1].macs.entries()] == [2]


# --- hostile input -----------------------------------------------------------------------

def test_the_fuzzers_catalogue_has_a_packet_in_the_fast_path_takes():
    from tests.support import ofmessages
    assert ofmessages.LEARNING_TABLE == L2_SRC
    raw = dict(ofmessages.catalogue())["PACKET_IN learning"].data
    datapath = FakeDatapath(1)
    datapath.ofp_brick = Brick()
    taken = []
    fastpath.serve(type("App", (), {"name": "recorder", "runtime": None})(), L2_SRC,
                   lambda dp, packet_ins, sink: taken.extend(packet_ins) or True,
                   oftemplate.pack, oftemplate.next_xids, lambda owners: None)
    assert offer(datapath, raw) and taken == [(2, raw[-14:])]


def _mutations(rng, base):
    for _ in range(3000):
        raw = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(8, len(raw))
            how = rng.random()
            if how < 0.5:
                raw[at] = rng.randrange(256)
            elif how < 0.7:   # a nested length: the match's or an OXM's
                spot = rng.choice([26, 27, 31, at])
                raw[min(spot, len(raw) - 1)] = rng.choice([0, 1, 3, 4, 7, 8, 0xFF])
            elif how < 0.85:
                del raw[at:]
            else:
                raw += bytes(rng.randrange(1, 40))
        struct.pack_into("!H", raw, 2, len(raw)) if len(raw) >= 4 else None
        yield bytes(raw)


def test_fuzzed_packet_ins_never_raise_and_what_is_taken_is_what_ryu_reads(monkeypatch):
    seen = []

    class App:
        name, runtime = "recorder", None

    def record(datapath, packet_ins, sink):
        seen.extend(packet_ins)
        return True
    fastpath.serve(App(), L2_SRC, record, oftemplate.pack, oftemplate.next_xids,
                   lambda owners: None)
    datapath = FakeDatapath(1)
    datapath.ofp_brick = Brick()
    rng, taken = random.Random(19), 0
    base = raw_packet_in(3, eth("02:dd:00:00:00:01", "02:00:00:00:00:01"))
    for raw in _mutations(rng, base):
        if len(raw) < 8:
            continue
        seen.clear()
        buf = bytearray(raw)
        handled = fastpath.packet_in_raw(datapath, buf, 0, len(raw))
        assert fastpath.run_pending(datapath, buf) == []
        fastpath.flush(datapath)
        if not handled:
            continue
        taken += 1
        ofcheck.check(raw)   # the fast path takes nothing the checks would refuse
        version, msg_type, msg_len, xid = struct.unpack_from("!BBHI", raw)
        msg = datapath.ofproto_parser.msg_parser(datapath, version, msg_type, msg_len, xid, raw)
        assert seen == [(msg.match["in_port"], msg.data)]
        assert msg.table_id == L2_SRC
    assert 200 < taken < 3000   # mutated bytes of the payload are taken, broken ones are not
