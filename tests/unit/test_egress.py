"""Frames leave only from the egress stage (issue 16, 2b): a QoS rule that names its
port sets the queue and goes on, and VLAN egress still decides how (and whether) the
frame leaves that port. On the table simulator, learning + VLAN + QoS together."""
import pytest

from controller import pipeline
from flows import egress, l2, lb, qos, vlan
from flows.spec import CONTROLLER, IN_PORT, NORMAL, FlowSpec, Match, Output, Owner
from flows.vlan import PortVlan
from tests.support.ofsim import Switch, frame

H1, H2, H3, H5 = ("00:00:00:00:00:01", "00:00:00:00:00:02", "00:00:00:00:00:03",
                  "00:00:00:00:00:05")
BCAST = "ff:ff:ff:ff:ff:ff"
# 1, 2: access VLAN 10 (sender, receiver with the HTB tree); 3: access VLAN 20;
# 4: trunk of 10 and 20 (with queues too); 5: trunk of every VLAN
PORTS = [PortVlan(1, tag=10), PortVlan(2, tag=10), PortVlan(3, tag=20),
         PortVlan(4, trunks=(10, 20)), PortVlan(5)]
HTB = {"max_rate": "10M", "queues": {"0": {"min_rate": "5M"}, "1": {"min_rate": "1M"}}}


def rule_to(port):
    ports = {p: qos.port_qos_from_dict(HTB) for p in (2, 4, 5)}
    return qos.rule_from_dict(1, {"match": {"udp_dst": 5001}, "queue": 1, "port": port},
                              lambda ref: ref, ports, tc_classified=True)


def switch(mode, rules, with_vlans=True):
    settings = l2.L2Settings(mode=mode)
    ports = PORTS if with_vlans else [vlan.trunk_all(p.port) for p in PORTS]
    untagged = vlan.untagged_egress_pairs(ports) if with_vlans else frozenset()
    items = pipeline.table_misses() + l2.switch_defaults(settings, untagged)
    if with_vlans:
        items += vlan.switch_plan(ports, [p.port for p in ports])
    items += qos.switch_plan({}, rules, meter_policing=True)
    return Switch([p.port for p in PORTS]).apply(items)


def udp(in_port, src, dst, vlan_id=None):
    return frame(in_port, src, dst, vlan=vlan_id, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2",
                 ip_proto=17, udp_dst=5001)


def leaving(result):
    """{port: [(VLAN as the frame leaves, queue)]}"""
    return {port: [(p["vlan_vid"], p.get("queue")) for p in pkts]
            for port, pkts in result.outputs.items()}


@pytest.mark.parametrize("mode", l2.MODES)
def test_same_vlan_frames_reach_the_rules_access_port_untagged_in_its_queue(mode):
    sw = switch(mode, [rule_to(2)])
    # H2 has not spoken: without the rule the frame would be flooded in VLAN 10
    assert leaving(sw.process(udp(1, H1, H2))) == {2: [(None, 1)]}
    # and once H2 is known elsewhere (a learned entry to port 4), the rule still wins
    sw.process(frame(4, H2, BCAST, vlan=10))
    assert leaving(sw.process(udp(1, H1, H2))) == {2: [(None, 1)]}


@pytest.mark.parametrize("mode", l2.MODES)
def test_frames_of_another_vlan_never_reach_the_rules_port(mode):
    sw = switch(mode, [rule_to(2)])
    assert leaving(sw.process(udp(3, H3, H2))) == {}
    # tagged 20 from the trunk: dropped as well (port 2 carries only VLAN 10)
    assert leaving(sw.process(udp(4, H3, H2, vlan_id=20))) == {}


def test_a_rule_towards_a_trunk_keeps_the_frames_vlan_tag():
    sw = switch("datapath", [rule_to(4)])
    assert leaving(sw.process(udp(1, H1, H5))) == {4: [(10, 1)]}
    assert leaving(sw.process(udp(3, H3, H5))) == {4: [(20, 1)]}
    # towards the trunk of every VLAN: VLAN 0 (untagged in) leaves untagged, others tagged
    sw = switch("datapath", [rule_to(5)])
    assert leaving(sw.process(udp(1, H1, H5))) == {5: [(10, 1)]}
    assert leaving(sw.process(udp(4, H3, H5, vlan_id=20))) == {5: [(20, 1)]}


def test_the_rule_still_learns_the_sender():
    sw = switch("datapath", [rule_to(2)])
    sw.process(udp(1, H1, H2))
    assert leaving(sw.process(frame(2, H2, H1))) == {1: [(None, None)]}   # H1 was learned


def test_without_the_vlan_app_the_frame_leaves_the_port_as_it_came():
    sw = switch("datapath", [rule_to(2)], with_vlans=False)
    assert leaving(sw.process(udp(1, H1, H2))) == {2: [(None, 1)]}
    assert leaving(sw.process(udp(4, H1, H2, vlan_id=10))) == {2: [(10, 1)]}


def test_a_rule_without_a_port_directs_nothing():
    rule = qos.rule_from_dict(1, {"match": {"udp_dst": 5001}, "queue": 1}, lambda r: r,
                              {2: qos.port_qos_from_dict(HTB)}, tc_classified=True)
    sw = switch("datapath", [rule])
    assert not sw.flows(owner=qos.EGRESS)
    assert leaving(sw.process(udp(1, H1, H2))) == {2: [(None, 1)], 4: [(10, 1)], 5: [(10, 1)]}


# --- the pipeline refuses outputs outside the egress stage -------------------------

@pytest.mark.parametrize("table", ["ingress", "police", "vip", "qos", "l2_src"])
def test_no_table_before_the_egress_stage_may_output_to_a_port(table):
    spec = FlowSpec(table, 5, Match(), Owner("qos", "rule"), actions=(Output(2),))
    with pytest.raises(pipeline.PipelineError, match="egress tables"):
        pipeline.validate(spec)


@pytest.mark.parametrize("port", [CONTROLLER, IN_PORT, NORMAL])
def test_copies_to_the_controller_answers_to_the_asker_and_normal_stay_allowed(port):
    pipeline.validate(FlowSpec("qos", 5, Match(), Owner("qos", "rule"), actions=(Output(port),)))


def test_egress_tables_output_and_lb_is_the_declared_exception():
    for table in ("l2_dst", "flood"):
        pipeline.validate(FlowSpec(table, 1, Match(), Owner("l2_switch", "default"),
                                   actions=(Output(2),)))
    pipeline.validate(FlowSpec("vip", 150, Match(), lb.vip_owner(1), actions=(Output(2),)))


def test_every_app_plan_passes_the_output_rule():
    for spec in vlan.switch_plan(PORTS, [1, 2, 3, 4]) + qos.switch_plan({}, [rule_to(2)], True):
        if isinstance(spec, FlowSpec):
            pipeline.validate(spec)
    with pytest.raises(ValueError, match="port number"):
        egress.direct_to(0)
