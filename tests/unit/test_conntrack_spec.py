"""Conntrack in the flow specs: what a Ct, a Nat, a CtClear and the ct match fields
accept and refuse, how they compile and come back from the wire, and how they print."""
import pytest

from controller import ofcompile, ofctl_text
from flows.spec import Ct, CtClear, FlowSpec, Match, Nat, Owner
from tests.support import ctlab


@pytest.mark.parametrize("make, message", [
    (lambda: Ct(65536), "zone must be an integer 0..65535"),
    (lambda: Ct(-1), "zone must be an integer 0..65535"),
    (lambda: Ct("5"), "zone must be an integer"),
    (lambda: Ct(1, mark=1), "only with commit"),
    (lambda: Ct(1, mark_from="reg0"), "only with commit"),
    (lambda: Ct(1, commit=True, mark=1 << 32), "32-bit"),
    (lambda: Ct(1, commit=True, mark=(3, 1)), "outside its mask"),
    (lambda: Ct(1, commit=True, mark=1, mark_from="reg0"), "not both"),
    (lambda: Ct(1, commit=True, label=(1, 1)), "whole"),
    (lambda: Ct(1, nat=Nat("src", "10.0.0.1")), "needs commit"),
    (lambda: Ct(1, commit=True, nat="src"), "must be a Nat"),
    (lambda: Nat("src"), "needs an address range"),
    (lambda: Nat("both", "10.0.0.1"), "'src' or 'dst'"),
    (lambda: Nat(None, "10.0.0.1"), "needs kind"),
    (lambda: Nat("src", "10.0.0.300"), "not an IPv4 or IPv6 address"),
    (lambda: Nat("src", "10.0.0.9", "10.0.0.1"), "low to high"),
    (lambda: Nat("src", "10.0.0.1", "2001:db8::1"), "one family"),
    (lambda: Nat("src", "10.0.0.1", port_min=0), "1..65535"),
    (lambda: Nat("src", "10.0.0.1", port_min=2000, port_max=1000), "backwards"),
    (lambda: Nat("src", "10.0.0.1", port_max=1000), "low end"),
    (lambda: Match.of(ct_zone=70000), "16-bit"),
    (lambda: Match.of(ct_mark=(1, 1 << 33)), "32-bit"),
    (lambda: Match.of(ct_label=-1), "128-bit"),
])
def test_bad_conntrack_values_are_refused_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_what_the_load_balancer_writes_still_means_the_same():
    assert Ct(9, None, True, "reg0") == Ct(zone=9, commit=True, mark_from="reg0")
    assert Ct(5).nat is None and Ct(5).mark is None


def test_values_are_normalised_so_equal_intents_are_equal_specs():
    assert Nat("src", "203.0.113.1") == Nat("src", "203.0.113.1", "203.0.113.1")
    assert Nat("dst", "2001:DB8:0::1") .ip_min == "2001:db8::1"
    assert Nat("src", "10.0.0.1", port_min=80) == Nat("src", "10.0.0.1", None, 80, 80)
    assert Ct(1, commit=True, mark=5) == Ct(1, commit=True, mark=(5, 0xFFFFFFFF))


def test_every_lab_pipeline_comes_back_from_the_wire_as_itself():
    for specs in (ctlab.firewall(), ctlab.snat(ports=(50000, 50009)), ctlab.floating_ip(),
                  ctlab.rezoned(3, 4)):
        assert [spec for _, spec in ctlab.on_the_wire(specs)] == specs


def test_ct_match_fields_compile_and_decode():
    spec = FlowSpec("police", 10, Match.of(eth_type=0x0800, ct_state="+trk+est-rpl+snat",
                                           ct_zone=7, ct_mark=(1, 0xFF), ct_label=1 << 90),
                    ctlab.OWNER, (CtClear(),))
    assert [s for _, s in ctlab.on_the_wire([spec])] == [spec]
    assert ofcompile.compile_match(spec.match)["ct_mark"] == (1, 0xFF)


def test_ct_prints_as_ovs_ofctl_writes_it():
    """(tests/integration/test_ofctl_text.py reads such lines with ovs-ofctl itself.)"""
    text = ofctl_text.action_text
    assert text(Ct(4, "vip", True, nat=Nat("src", "203.0.113.1", "203.0.113.9", 1024, 2047),
                   mark=(1, 3))) == \
        "ct(commit,zone=4,table=5,nat(src=203.0.113.1-203.0.113.9:1024-2047)," \
        "exec(set_field:0x1/0x3->ct_mark))"
    assert text(Ct(4, "vip", nat=Nat())) == "ct(zone=4,table=5,nat)"
    assert text(Ct(1, commit=True, nat=Nat("dst", "2001:db8::1"))) == \
        "ct(commit,zone=1,nat(dst=[2001:db8::1]))"
    assert text(CtClear()) == "ct_clear"


def test_the_simulator_refuses_ct_where_ovs_does():
    sw = ctlab.switch([])
    with pytest.raises(ValueError, match="OFPBAC_MATCH_INCONSISTENT"):
        sw.add(FlowSpec("ingress", 1, Match.of(eth_type=0x0806), Owner("pipeline", "rule"),
                        (Ct(1),)))
    with pytest.raises(ValueError, match="other IP family"):
        sw.add(FlowSpec("ingress", 1, Match.of(eth_type=0x0800), Owner("pipeline", "rule"),
                        (Ct(1, commit=True, nat=Nat("src", "2001:db8::1")),)))
