"""`sdn plan`'s ovs-ofctl text (controller/ofctl_text.py) says what the controller sends,
as OVS itself reads both: each planned flow's line through `ovs-ofctl parse-flows`, and
the bytes controller/ofcompile.py sends for it through `ovs-ofctl ofp-print`, print the
same; groups likewise through `parse-group`. Needs the ovs-ofctl binary, not a switch."""
import re
import subprocess

import pytest

from controller import ofcompile, plan
from flows import l2, lb, lb_intent, lb_spread, learning
from flows.spec import Ct, CtClear, FlowSpec, GroupSpec, Match, Nat, Owner
from tests.support import combinations, overlay_app, qos_app, vlan_app
from tests.support import wire

pytestmark = pytest.mark.integration

_XID = re.compile(r" \(xid=0x[0-9a-f]+\)")
_LOAD = re.compile(r"load:(0x[0-9a-f]+)->NXM_NX_CT_MARK\[(\d+)\.\.(\d+)\]")


def _as_set_field(found) -> str:
    """ovs-ofctl parses a masked set_field of ct_mark into a Nicira load of those bits
    and prints it so; the controller sends it as reg_load2, printed as the set_field.
    The same write either way (OVS keeps both as one masked set-field)."""
    value, low, high = int(found.group(1), 16), int(found.group(2)), int(found.group(3))
    mask = ((1 << (high - low + 1)) - 1) << low
    return f"set_field:{value << low:#x}/{mask:#x}->ct_mark"


def _ovs_ofctl(*args) -> str:
    result = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def _printed(text: str, kind: str):
    """The OFPT_*_MOD lines of ovs-ofctl's output, without xids (and without the
    out_port an ADD ignores, which ofp-print shows and parse-flows leaves at its default)."""
    return [_LOAD.sub(_as_set_field, _XID.sub("", line).replace(" out_port:0", ""))
            for line in text.splitlines() if line.startswith(f"OFPT_{kind}_MOD")]


def _planned():
    """Every flow and group the apps plan for a spread of configs: the combinations'
    shared switch with every app, a bonded switch, both overlay bridges, and the entries
    the learning switch adds for a host (tagged, untagged, with the tag popped) and a
    VIP's with its backends located (one behind a port that pops the tag)."""
    data = dict(combinations.SECTIONS, l2_switch={"mode": "reactive"})
    items = []
    for dpid, ports in ((combinations.DPID, combinations.PORTS),
                        (combinations.BONDED, {1: "s2-eth1", 2: "s2-eth2", 3: "s2-eth3"})):
        for entries in plan.plan(data, plan.planned_switch("s", dpid, ports))["apps"].values():
            items += entries
    qos = plan.plan(qos_app.QOS_LAB_CONFIG, plan.planned_switch("s1", 1, qos_app.NAMES))
    vlan = plan.plan({"vlan": vlan_app.SECTION}, plan.planned_switch("br0", 1, vlan_app.PORTS))
    metered = plan.plan({"qos": {"rules": [{"switch": 1, "id": 7, "meter": {"rate": "2M"},
                                            "match": {"eth_src": "00:00:00:00:00:01"}}]}},
                        plan.planned_switch("s1", 1, qos_app.NAMES))
    for result in (qos, vlan, metered):
        items += [i for entries in result["apps"].values() for i in entries]
    hv = overlay_app.HVS[0]
    for dpid, ports in ((hv["int_dpid"], {1: "patch-tun", 2: "hv1-eth2"}),
                        (hv["tun_dpid"], {1: "patch-int", 2: "vx-hv2"})):
        result = plan.plan({"overlay": overlay_app.SECTION}, plan.planned_switch("br", dpid, ports))
        items += [i for entries in result["apps"].values() for i in entries]
    vip = lb_intent.vips_from(lb_intent.LbSettings(**combinations.SECTIONS["lb"]), {})[1]
    located = [lb.Located(b, f"00:00:00:00:00:{n:02x}", 10 + n, vlan)
               for n, (b, vlan) in enumerate(zip(vip.backends, (10, None)), 1)]
    items += lb.vip_flows(vip, located, False, located, frozenset({(11, 10)}))
    # a second nat VIP on the same backends: the replies try both VIPs' zones in turn
    other = lb_intent.vips_from(lb_intent.LbSettings(**dict(
        combinations.SECTIONS["lb"], vips=[combinations.SECTIONS["lb"]["vips"][0],
                                           dict(combinations.SECTIONS["lb"]["vips"][0],
                                                vip="10.0.0.101")])), {})[2]
    items += lb.reply_flows([(vip, located), (other, located)])
    spread = lb_spread.spread_from_dict(1, 1, {"subnet": "192.168.2.0/24", "ports": [12, 13]},
                                        int)
    items += lb_spread.spread_flows(spread)
    settings = l2.L2Settings()
    for vlan_id, untagged in ((10, frozenset()), (None, frozenset()), (10, {(3, 10)})):
        items += learning.new_host(settings, "00:00:00:00:00:07", 3, vlan_id, untagged)
    return items + CONNTRACK


# What conntrack can say that no app says yet (security groups, SNAT and floating IPs
# will): NAT ranges of both families, constant and masked marks, a label, ct_clear, and
# matches on the ct fields.
_OWNER, _IP = Owner("lb", "vip"), {"eth_type": 0x0800, "ip_proto": 6}
CONNTRACK = [FlowSpec("vip", 200 + n, Match.of(**_IP, tcp_dst=80 + n, **match), _OWNER,
                      actions=actions)
             for n, (match, actions) in enumerate([
                 ({"ct_state": "-trk"}, (CtClear(), Ct(zone=7, table="vip"))),
                 ({"ct_state": "+trk+new"}, (Ct(zone=7, commit=True, nat=Nat(
                     "src", "203.0.113.1", "203.0.113.9", 1024, 65000)),)),
                 ({"ct_state": "+trk+est"}, (Ct(zone=7, nat=Nat()),)),
                 ({"ct_mark": (1, 0xff)}, (Ct(zone=3, commit=True, mark=(2, 0xff)),)),
                 ({"ct_mark": 5}, (Ct(zone=3, commit=True, mark=(9, 0xffffffff),
                                                     label=(1 << 100, (1 << 128) - 1)),)),
                 ({}, (Ct(zone=4, commit=True, table="qos", nat=Nat("dst", "10.0.0.5")),)),
             ])] + [FlowSpec("vip", 210, Match.of(eth_type=0x86DD, ip_proto=6), _OWNER,
                             actions=(Ct(zone=9, commit=True,
                                         nat=Nat("src", "2001:db8::1", port_min=5000)),))]


def test_every_planned_flow_reads_as_what_the_controller_sends(tmp_path):
    flows = list(dict.fromkeys(i for i in _planned() if isinstance(i, FlowSpec)))
    kinds = {type(a).__name__ for spec in flows for a in spec.actions}
    assert {"Output", "SetField", "PushVlan", "PopVlan", "Group", "SetQueue", "Move", "Ct",
            "CtClear", "Learn"} <= kinds, kinds  # every kind but Resubmit (the groups' test)
    assert any(spec.meter for spec in flows) and any(spec.idle_timeout for spec in flows)
    assert {"reply", "spread"} <= {spec.owner.purpose for spec in flows}   # the LB's newest
    text = tmp_path / "plan.txt"
    text.write_text("".join(plan.describe(spec) + "\n" for spec in flows))
    from_text = _printed(_ovs_ofctl("parse-flows", str(text)), "FLOW")
    sent = []
    for spec in flows:
        message = ofcompile.flow_mod(wire.DP, spec)
        message.serialize()
        sent += _printed(_ovs_ofctl("ofp-print", bytes(message.buf).hex()), "FLOW")
    assert len(from_text) == len(flows)
    assert [(t, s) for t, s in zip(from_text, sent) if t != s] == []


def test_every_planned_group_reads_as_what_the_controller_sends():
    groups = [i for i in _planned() if isinstance(i, GroupSpec)]
    assert any(len(g.buckets) > 1 for g in groups)
    assert any(type(a).__name__ == "Resubmit" for g in groups for b in g.buckets
               for a in b.actions)
    for group in groups:
        from_text = _ovs_ofctl("parse-group", plan.describe(group))
        message = ofcompile.group_mod(wire.DP, group)
        message.serialize()
        sent = _ovs_ofctl("ofp-print", bytes(message.buf).hex())
        assert _XID.sub("", from_text.split("\n", 2)[-1]) == _XID.sub("", sent), group
