"""Switches the overlay app owns outright are left alone by the other apps in the same
ryu-manager: their OpenFlow events never reach those apps' handlers."""
import pytest
from ryu.controller import handler, ofp_event
from ryu.controller.handler import DEAD_DISPATCHER

from controller.claims import Claims
from tests.support import l2_app as l2_tests
from tests.support import overlay_app as overlay_tests


def features(dpid):
    return ofp_event.EventOFPSwitchFeatures(l2_tests.Features(l2_tests.FakeDatapath(dpid)))


def test_claims_replace_an_apps_earlier_ones_and_do_not_overlap():
    claims = Claims()
    claims.claim("Overlay", [1, 2])
    claims.claim("Overlay", [2, 3])
    assert [claims.owner(d) for d in (1, 2, 3)] == [None, "Overlay", "Overlay"]
    assert claims.leaves_alone("L2Switch", 2) and not claims.leaves_alone("Overlay", 2)
    assert not claims.leaves_alone("L2Switch", 1) and not claims.leaves_alone("L2Switch", None)
    claims.claim("Other", [4])
    with pytest.raises(ValueError, match="already Overlay's"):
        claims.claim("Other", [3, 5])
    assert [claims.owner(d) for d in (3, 4, 5)] == ["Overlay", "Other", None]   # unchanged


def test_the_other_apps_never_see_the_overlays_bridges(monkeypatch, tmp_path):
    overlay = overlay_tests.make_app(monkeypatch, tmp_path, overlay_tests.SECTION)
    l2 = l2_tests.make_app(monkeypatch, overlay.runtime)   # one ryu-manager: one runtime
    for app in (overlay, l2):      # what ryu-manager does when it starts an app
        handler.register_instance(app)
    for dpid in (0x1001, 0x2001, 0x1002, 0x2002):   # hv1, hv2: br-int, br-tun
        assert l2.get_handlers(features(dpid)) == []
        assert overlay.get_handlers(features(dpid)) != []
    assert l2.get_handlers(features(1)) != []      # any other switch: as before
    gone = ofp_event.EventOFPStateChange(l2_tests.FakeDatapath(0x1001))
    gone.state = DEAD_DISPATCHER
    assert l2.get_handlers(gone, DEAD_DISPATCHER) != []   # an end always gets through
    overlay.model = overlay.model.without_port("hv2", "hv2-eth2").without_hypervisor("hv2")
    assert l2.get_handlers(features(0x1002)) != []
    assert l2.get_handlers(features(0x1001)) == []


def test_name_claims_ask_the_resolver_once_per_connection_and_survive_its_failures():
    asked = []

    def resolver(dpid):
        asked.append(dpid)
        if dpid == 9:
            raise RuntimeError("OVSDB is away")
        return f"s{dpid}"
    claims = Claims()
    claims.claim_names("Bond", ["s1"], resolver)
    assert claims.owner(1) == "Bond" and claims.owner(1) == "Bond" and claims.owner(2) is None
    assert claims.owner(9) is None and claims.owner(9) is None      # unknown: not claimed
    assert asked == [1, 2, 9]                       # a failure too is asked once, not per event
    claims.forget_name(9)
    assert claims.owner(9) is None and asked[-1] == 9               # next connection: again
    claims.forget_name(2)                                          # its connection ended
    assert claims.owner(2) is None and asked[-1] == 2              # named afresh next time
    claims.claim("Overlay", [1])                                   # a datapath id claim wins
    assert claims.owner(1) == "Overlay"
    with pytest.raises(ValueError, match="already Bond's"):
        claims.claim_names("Other", ["s1"], resolver)
