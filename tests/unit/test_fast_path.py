"""The packet-in fast path (controller/fastpath.py) and its precompiled flow-mods
(controller/oftemplate.py): the same bytes as Ryu's path for the same packet-ins, and
no input from a switch that makes it raise."""
import random
import struct
import time

import eventlet

import pytest
from ryu.base import app_manager
from ryu.controller import handler, ofp_event
from ryu.controller.handler import MAIN_DISPATCHER
from ryu.lib import hub

from controller import fastpath, metrics, ofcheck, ofguard, oftemplate, ofwire, pipeline
from flows import l2
from flows.spec import UNTAGGED, Match
from tests.support.fakeswitch import run_inline
from tests.support.ofguard_fakes import FakeSocket
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
    buf, left = bytearray(raw), []
    queued = fastpath.packet_in_raw(datapath, buf, 0, len(raw))
    assert fastpath.run_pending(datapath, buf, lambda raw: left.append(raw) or True)
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
                    oftemplate.next_xids(datapath, template.count))
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
    templates = oftemplate.Templated(lambda key: (build, slots, {
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
    assert fastpath.run_pending(datapath, chunk, refuse_nothing)
    fastpath.flush(datapath)


def refuse_nothing(raw):
    raise AssertionError("the fast path left a packet-in")


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
    assert fastpath.run_pending(datapath, chunk, refuse_nothing)
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


def test_a_packet_in_whose_handling_raises_is_dropped_alone(monkeypatch, caplog):
    """As Ryu's event loop drops only the event whose handler raised: the others of
    the read are handled, counted, and other apps get all their events."""
    app = make_app(monkeypatch)
    monkeypatch.setitem(app_manager.SERVICE_BRICKS, "stock", object())
    brick = Brick([app.name, "stock"])
    datapath = fast_switch(app, brick=brick)
    hosts = [f"02:00:00:00:00:0{n}" for n in (1, 2, 3)]
    located = app._located

    def broken(mac, vlan, dpid, port):
        if mac == hosts[1]:
            raise RuntimeError("boom")
        located(mac, vlan, dpid, port)
    monkeypatch.setattr(app, "_located", broken)
    before = packet_ins_counted()
    _read(datapath, bytearray(b"".join(raw_packet_in(n, eth("02:dd:00:00:00:01", host))
                                       for n, host in enumerate(hosts, 1))))
    assert "boom" in caplog.text
    assert {e.mac for e in app.switches[1].macs.entries()} == set(hosts)
    assert [ev.msg.match["in_port"] for _, ev in brick.sent] == [1, 2, 3]
    assert packet_ins_counted() == before + 3
    assert sum(1 for m in datapath.sent if m.msg_type == 14) == 6


def packet_ins_counted():
    """sdn_packet_ins of switch 1 (read from the counter: a scrape of the registry would
    ask the apps' switches for their flows)."""
    return metrics.PACKET_INS.value(1)


class QueueBrick(Brick):
    """Ryu's dispatch as the app sees it: OpenFlow events go into the app's own queue,
    handled later in its green thread (`drain`)."""

    def __init__(self, app):
        super().__init__([app.name])
        self.app = app

    def send_event_to_observers(self, ev, state):
        self.app._send_event(ev, state)

    def send_event(self, name, ev, state):
        self.app._send_event(ev, state)

    def get_handlers(self, ev):
        return []

    def drain_forever(self):
        """Ryu's RyuApp._event_loop, as far as these tests need it."""
        app = self.app
        while True:
            ev, state = app.events.get()
            app._events_sem.release()
            for run in app.get_handlers(ev, state):
                run(ev)


def flow_removed(mac, port):
    match = ofwire._match(Match.of(in_port=port, vlan_vid=UNTAGGED, eth_src=mac))
    body = struct.pack("!QHBBIIHHQQ", pipeline.cookie(l2.HOSTS), l2.HOST_PRIORITY, 0, L2_SRC,
                       300, 0, 300, 0, 1, 60) + match
    return struct.pack("!BBHI", 4, 11, 8 + len(body), 5) + body


def port_down(port):
    desc = struct.pack("!I4x6s2x16sIIIIIIII", port, bytes(6), b"p", 0, 1, 0, 0, 0, 0, 0, 0)
    body = struct.pack("!B7x", 2) + desc
    return struct.pack("!BBHI", 4, 12, 8 + len(body), 9) + body


def _one_read(monkeypatch, fast, settings, before, read):
    """`before` (port, source) learned, then `read` through the receive loop's message
    handling, with the app's own event loop draining its queue in a green thread of
    its own, as in ryu-manager: (flow-mods sent, hosts known, bans, packet-ins the fast
    path took)."""
    run_inline(monkeypatch, hub)
    app = make_app(monkeypatch, **settings)
    handler.register_instance(app)   # what ryu-manager does: its handlers by event class
    datapath = connect(app)
    datapath.send = datapath.send_packed
    datapath.ofp_brick = QueueBrick(app)
    for port, host in before:
        app._packet_in(packet_in(datapath, port, eth("02:dd:00:00:00:01", host)))
    datapath.sent.clear()
    monkeypatch.setattr(fastpath, "enabled", fast)
    events = eventlet.spawn(datapath.ofp_brick.drain_forever)
    buf = bytearray(read)
    taken = metrics.FAST_PATH.value(1)
    try:
        assert ofguard._messages(datapath, buf) == len(buf)
    finally:
        fastpath.flush(datapath)
    eventlet.sleep(0.05)   # the app's loop handles what is left
    events.kill()
    switch = app.switches[1]
    fast_taken = metrics.FAST_PATH.value(1) - taken
    hosts_held = sorted(str(stat.match) for stat in datapath.flows.values()
                        if stat.cookie == pipeline.cookie(l2.HOSTS))
    return ([(m.table_id, m.command, m.priority) for m in datapath.sent if m.msg_type == 14],
            sorted((e.mac, e.port) for e in switch.macs.entries()), sorted(switch.bans),
            fast_taken, hosts_held)


@pytest.mark.parametrize("case", ["expiry", "port_down", "down_between"])
def test_what_is_queued_before_a_packet_in_is_applied_before_it(monkeypatch, case):
    """A host's expiry (FLOW_REMOVED) or a port going down, read just before a
    packet-in, is applied first on both paths: the fast path lets the app handle its
    queued events before it decides the packet-in; and what the fast path produced
    before such a message reaches the switch before what the app sends for it."""
    a, b, c = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"
    taken = 1
    if case == "expiry":   # a's entry expired, then a speaks again: learned anew
        settings, before, hosts = {}, [(1, a)], [(a, 1)]
        read = flow_removed(a, 1) + raw_packet_in(1, eth("02:dd:00:00:00:01", a))
    elif case == "port_down":   # port 3 (at its cap) went down, then a new host there
        settings, before, hosts = {"max_macs_per_port": 2, "ban_s": 30}, [(3, a), (3, b)], \
            [(c, 3)]
        read = port_down(3) + raw_packet_in(3, eth("02:dd:00:00:00:01", c))
    else:   # a new host on port 1, port 1 goes down, a new host on port 2: a is forgotten
        settings, before, hosts, taken = {}, [], [(b, 2)], 2
        read = raw_packet_in(1, eth("02:dd:00:00:00:01", a)) + port_down(1) + \
            raw_packet_in(2, eth("02:dd:00:00:00:01", b))
    ryu = _one_read(monkeypatch, False, settings, before, read)
    fastpath.reset()
    fast = _one_read(monkeypatch, True, settings, before, read)
    assert fast[:3] == ryu[:3] and fast[4] == ryu[4]   # what was sent, in order; what is held
    assert ryu[1] == hosts and ryu[2] == []
    assert not any(a.replace(":", "") in m.replace(":", "") for m in ryu[4] if case != "expiry")
    assert (ryu[3], fast[3]) == (0, taken)   # the fast path took them, the app caught up


def test_an_app_stuck_in_a_handler_is_waited_for_a_bounded_time(monkeypatch):
    """A handler waiting for something this very connection brings must not hang the
    receive loop: after CATCH_UP_S the packet-ins go to Ryu's path, behind it."""
    app = make_app(monkeypatch)
    datapath = fast_switch(app)
    monkeypatch.setattr(fastpath, "CATCH_UP_S", 0.05)
    app._handling = 1   # a handler of the app is running (and waiting)
    start = time.monotonic()
    assert not offer(datapath, raw_packet_in(1, eth("02:dd:00:00:00:01", "02:00:00:00:00:01")))
    assert 0.04 < time.monotonic() - start < 1 and not app.switches[1].macs
    start = time.monotonic()   # still stuck: not waited for again, Ryu's path at once
    assert not offer(datapath, raw_packet_in(1, eth("02:dd:00:00:00:01", "02:00:00:00:00:02")))
    assert time.monotonic() - start < 0.03
    app._handling = 0          # caught up: the fast path again
    assert offer(datapath, raw_packet_in(1, eth("02:dd:00:00:00:01", "02:00:00:00:00:03")))


def test_packet_ins_before_a_bad_header_are_still_handled(monkeypatch):
    app = make_app(monkeypatch)
    datapath = fast_switch(app)
    datapath.address, datapath.socket = ("192.0.2.7", 40000), FakeSocket()
    buf = bytearray(raw_packet_in(1, eth("02:dd:00:00:00:01", "02:00:00:00:00:01")) +
                    struct.pack("!BBHI", 4, 2, 4, 1))   # an echo request of length 4
    try:
        assert ofguard._messages(datapath, buf) is None
    finally:
        fastpath.flush(datapath)
    assert [e.mac for e in app.switches[1].macs.entries()] == ["02:00:00:00:00:01"]
    assert sum(1 for m in datapath.sent if m.msg_type == 14) == 2


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
        assert fastpath.run_pending(datapath, buf, refuse_nothing)
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
