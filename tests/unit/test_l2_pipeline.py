"""The learning switch, run through the table simulator (no switch, no root)."""
import pytest

from controller import desired_state, pipeline
from flows import l2, learning
from flows.mac_table import KNOWN, MOVED, NEW, TABLE_FULL, MacTable
from tests.support.l2_reactive import DatapathOnly, ReactiveController
from tests.support.ofsim import Switch, frame

H1, H2, H3 = "00:00:00:00:00:01", "00:00:00:00:00:02", "00:00:00:00:00:03"
BCAST = "ff:ff:ff:ff:ff:ff"
PORTS = (1, 2, 3, 4)


def new_switch(mode, **settings):
    settings = l2.L2Settings(mode=mode, **settings)
    return Switch(PORTS).apply(desired_state.framed(l2.APP, learning.desired(settings))), settings


def network(mode, **settings):
    switch, settings = new_switch(mode, **settings)
    if mode == "reactive":
        return ReactiveController(switch, settings)
    return DatapathOnly(switch)


MODES = pytest.mark.parametrize("mode", l2.MODES)


@MODES
def test_unknown_destination_is_flooded_to_every_other_port(mode):
    net = network(mode)
    assert set(net.send(frame(1, H1, H2)).outputs) == {2, 3, 4}


@MODES
def test_frame_to_h2_goes_only_to_its_port_once_h2_has_spoken(mode):
    net = network(mode)
    net.send(frame(3, H2, H1))
    outputs = net.send(frame(1, H1, H2)).outputs
    assert set(outputs) == {3}
    assert outputs[3][0]["eth_dst"] == H2 and outputs[3][0]["vlan_vid"] is None


@MODES
def test_broadcast_floods_even_when_everything_is_learned(mode):
    net = network(mode)
    for port, mac in ((1, H1), (2, H2), (3, H3)):
        net.send(frame(port, mac, BCAST))
    assert set(net.send(frame(2, H2, BCAST)).outputs) == {1, 3, 4}


@MODES
def test_moved_host_is_relearned_at_once(mode):
    net = network(mode)
    net.send(frame(2, H2, BCAST))
    assert set(net.send(frame(1, H1, H2)).outputs) == {2}
    net.send(frame(4, H2, BCAST))  # H2 now speaks from port 4
    assert set(net.send(frame(1, H1, H2)).outputs) == {4}


@MODES
def test_silent_host_expires_and_is_flooded_again(mode):
    net = network(mode, idle_timeout=10)
    net.send(frame(2, H2, BCAST))
    net.expire(5)
    assert set(net.send(frame(1, H1, H2)).outputs) == {2}  # refreshes only H2's dst entry...
    net.expire(12)  # ...but H2 itself said nothing for 12 s
    if mode == "reactive":
        assert len(net.macs) == 1  # H1 (learned at t=5) is still there, H2 is gone
    assert set(net.send(frame(1, H1, H2)).outputs) == {2, 3, 4}


def test_reactive_packet_ins_stop_once_sources_are_known():
    net = network("reactive")
    first = net.send(frame(1, H1, H2))
    assert len(first.packet_ins) == 1 and first.packet_ins[0]["truncated_to"] == 128
    net.send(frame(2, H2, H1))
    assert net.send(frame(1, H1, H2)).packet_ins == []
    assert net.send(frame(2, H2, H1)).packet_ins == []


def test_datapath_mode_never_asks_the_controller():
    net = network("datapath")
    for pkt in (frame(1, H1, BCAST), frame(2, H2, H1), frame(1, H1, H2), frame(3, H3, H1)):
        net.send(pkt)
    assert net.switch.packet_ins == []
    learned = {s.match.get("eth_dst"): s.actions[0].port
               for s in net.switch.flows("l2_dst", owner=l2.LEARNED)}
    assert learned == {H1: 1, H2: 2, H3: 3}


def test_multicast_source_is_not_learned_by_the_controller():
    net = network("reactive")
    net.send(frame(1, "01:00:5e:00:00:01", BCAST))
    assert len(net.macs) == 0 and net.switch.flows(owner=l2.HOSTS) == []


def test_full_mac_table_floods_new_hosts_instead_of_evicting_known_ones():
    net = network("reactive", max_macs=2)
    for port, mac in ((1, H1), (2, H2), (3, H3)):
        net.send(frame(port, mac, BCAST))
    assert {e.mac for e in net.macs.entries()} == {H1, H2}
    assert set(net.send(frame(1, H1, H3)).outputs) == {2, 3, 4}  # H3 unknown: flooded
    assert set(net.send(frame(3, H3, H1)).outputs) == {1}       # but H3 still reaches H1


@MODES
def test_flush_forgets_hosts_and_keeps_the_defaults(mode):
    net = network(mode)
    defaults = net.switch.snapshot()
    net.send(frame(1, H1, BCAST))
    net.send(frame(2, H2, H1))
    assert net.switch.snapshot() != defaults
    net.switch.apply(l2.forget_all_hosts())
    assert net.switch.snapshot() == defaults


@MODES
def test_pushing_the_same_plan_twice_changes_nothing(mode):
    switch, settings = new_switch(mode)
    before = switch.snapshot()
    switch.apply(desired_state.framed(l2.APP, learning.desired(settings)))
    assert switch.snapshot() == before
    switch.apply(l2.learn_host(H1, 1, None, 60))
    once = switch.snapshot()
    switch.apply(l2.learn_host(H1, 1, None, 60))
    assert switch.snapshot() == once


def test_forget_everything_removes_only_this_apps_entries():
    switch, settings = new_switch("reactive")
    switch.apply(l2.learn_host(H1, 1, None, 60) + l2.forget_everything())
    assert switch.snapshot() == frozenset(pipeline.table_misses())


def test_mac_table_verdicts():
    table = MacTable(max_macs=2)
    assert table.observe(H1, 1, None, now=0)[0] == NEW
    assert table.observe(H1, 1, None, now=1)[0] == KNOWN
    verdict, previous = table.observe(H1, 2, None, now=2)
    assert verdict == MOVED and previous.port == 1
    assert table.observe(H1, 1, 10, now=3)[0] == NEW  # same MAC, another VLAN
    assert table.observe(H2, 1, None, now=4)[0] == TABLE_FULL
    assert not table.remove(H1, 1, None)  # an old location's expiry keeps the new one
    assert table.remove(H1, 2, None) and len(table) == 1


@pytest.mark.parametrize("bad, message", [
    ({"mode": "magic"}, "mode must be one of"),
    ({"idle_timeout": 0}, "idle_timeout must be a positive integer"),
    ({"idle_timeout": 70000}, "at most 65535"),
    ({"max_macs": "many"}, "max_macs must be a positive integer"),
    ({"packet_in_bytes": 10}, "at least 18"),
])
def test_settings_reject_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        l2.L2Settings(**bad)


def test_reactive_destination_entry_lives_as_long_as_the_host_speaks():
    """Nobody sends *to* H2 for a long time, but H2 keeps talking: it stays learned."""
    net = network("reactive", idle_timeout=3)
    for now in range(0, 10):
        net.expire(now)
        net.send(frame(2, H2, BCAST))
    assert set(net.send(frame(1, H1, H2)).outputs) == {2}


@MODES
def test_learning_is_per_vlan(mode):
    """The same MAC in two VLANs on two ports: each VLAN forwards to its own port."""
    net = network(mode)
    net.send(frame(2, H2, BCAST, vlan=10))
    net.send(frame(3, H2, BCAST, vlan=20))
    assert set(net.send(frame(1, H1, H2, vlan=10)).outputs) == {2}
    assert set(net.send(frame(1, H1, H2, vlan=20)).outputs) == {3}
    assert set(net.send(frame(1, H1, H2)).outputs) == {2, 3, 4}  # untagged: not learned yet


def test_a_mac_learned_untagged_does_not_capture_its_tagged_frames():
    """Stale entries from before the VLAN app tagged the port must not forward tagged
    traffic: the tagged frame is learned afresh (packet-in) and flooded meanwhile."""
    net = network("reactive")
    net.send(frame(2, H2, BCAST))                       # learned untagged
    result = net.send(frame(2, H2, BCAST, vlan=10))     # now the port is tagged 10
    assert len(result.packet_ins) == 1
    assert set(net.send(frame(1, H1, H2, vlan=10)).outputs) == {2}
    assert set(net.send(frame(1, H1, H2)).outputs) == {2}


# --- port security --------------------------------------------------------------------


def test_a_port_full_of_macs_takes_no_more_and_its_hosts_stay():
    from flows.mac_table import PORT_FULL
    table = MacTable(100, max_per_port=3)
    for n in range(3):
        assert table.observe(f"02:00:00:00:00:0{n}", 1, None, 0)[0] == NEW
    assert table.observe("02:00:00:00:00:09", 1, None, 0)[0] == PORT_FULL
    assert table.observe("02:00:00:00:00:09", 2, None, 0)[0] == NEW  # other ports: fine
    assert table.remove("02:00:00:00:00:00", 1, None)
    assert table.observe("02:00:00:00:00:08", 1, None, 0)[0] == NEW  # room again


def test_a_mac_that_keeps_moving_is_flapping_and_stays_put():
    from flows.mac_table import FLAPPING
    table = MacTable(100, flap_moves=3, flap_window_s=10)
    assert table.observe(H1, 1, None, 0)[0] == NEW
    assert [table.observe(H1, port, None, t)[0] for t, port in ((1, 2), (2, 1))] == \
        [MOVED, MOVED]
    verdict, previous = table.observe(H1, 2, None, 3)
    assert verdict == FLAPPING and previous.port == 1 and table.entries()[0].port == 1
    slow = MacTable(100, flap_moves=3, flap_window_s=10)
    slow.observe(H1, 1, None, 0)
    assert [slow.observe(H1, 1 + t % 2 * 1, None, t * 20)[0] for t in (1, 2, 3, 4)] == \
        [MOVED, MOVED, MOVED, MOVED]  # moves far apart are hosts that really moved


def test_a_port_ban_drops_new_sources_only_and_ends_by_itself():
    sw, settings = new_switch("reactive")
    sw.apply(l2.learn_host(H1, 1, None, 300) + [l2.ban_new_sources(1, 30)])
    assert sw.process(frame(1, H1, H2)).packet_ins == []          # known: still forwarded
    assert 2 in sw.process(frame(1, H1, BCAST)).outputs
    stranger = sw.process(frame(1, "02:66:00:00:00:01", BCAST))
    assert stranger.outputs == {} and stranger.packet_ins == []   # dropped in the switch
    assert sw.process(frame(2, "02:66:00:00:00:02", BCAST)).packet_ins  # other ports learn
    sw.advance(31)
    assert sw.process(frame(1, "02:66:00:00:00:01", BCAST)).packet_ins  # ban over

def test_a_mac_ban_drops_it_on_every_port():
    sw, _ = new_switch("reactive")
    sw.apply(l2.learn_host(H1, 1, None, 300) + [l2.ban_mac(H1, None, 30)])
    for port in (1, 2, 3):
        assert sw.process(frame(port, H1, H2)).outputs == {}
