"""The simulator runs what the compiler emits: the fake switch decodes the messages an
app sends and runs them in tests/support/ofsim.py, and simulator tests program their
switch through compile -> bytes -> decode, so an encoding bug fails them."""
import dataclasses

import pytest

from controller import ofactions, ofcompile, ofwire, pipeline
from flows.spec import FlowSpec, Match, Output, Owner, PopVlan
from tests.support import ofsim
from tests.support.l2_app import H1, H2, connect, eth, make_app, packet_in

FORWARD = FlowSpec("l2_dst", 100, Match.of(eth_dst=H2), Owner("l2_switch", "host"), (Output(2),))


def _off_by_one(action):
    packed = ofwire.pack_output(action)
    return packed[:4] + (int.from_bytes(packed[4:8], "big") + 1).to_bytes(4, "big") + packed[8:]


@pytest.fixture
def broken_output(monkeypatch):
    """An ofwire packer that gets the port wrong (what an encoding bug looks like)."""
    kind = ofactions.KINDS[Output]
    monkeypatch.setitem(ofactions.KINDS, Output, dataclasses.replace(kind, pack=_off_by_one))


def _outputs(**switch_args):
    sim = ofsim.Switch([1, 2, 3], **switch_args).apply(pipeline.table_misses() + [FORWARD])
    return sorted(sim.process(ofsim.frame(1, H1, H2)).outputs)


def test_a_simulator_test_sees_what_the_compiler_emits(broken_output):
    assert _outputs(through_wire=False) == [2]      # the spec itself
    assert _outputs() == [3]                         # what the switch would be told


def test_without_the_bug_both_agree():
    assert _outputs() == _outputs(through_wire=False) == [2]


def test_the_fake_switch_runs_what_the_app_sent(monkeypatch):
    app = make_app(monkeypatch)
    switch = connect(app)
    app._packet_in(packet_in(switch, 3, eth(H1, H2)))     # H2 learned on port 3
    learned = switch.sim.flows("l2_dst")
    assert [(f.match.get("eth_dst"), f.owner) for f in learned] == [(H2, Owner("l2_switch",
                                                                                "host"))]
    assert [f.match.get("eth_src") for f in switch.sim.flows("l2_src")] == [H2]


def test_the_fake_switch_refuses_what_ovs_refuses(monkeypatch):
    switch = connect(make_app(monkeypatch))
    with pytest.raises(ValueError, match="pop_vlan"):
        switch.send_msg(ofcompile.flow_mod(switch, dataclasses.replace(FORWARD, actions=(
            PopVlan(), Output(2)))))
