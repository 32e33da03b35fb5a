"""tc filters for frames that leave tagged (issue 16, 5): on a trunk port the userspace
datapath's frames reach tc as protocol 802.1Q with the network header behind the tag.
tc_filters_tagged.json is `tc -j filter show` of this very plan, put on a veth by real
tc (Linux 6.18, iproute2 of Debian 12); with it every one of these rules classified
both its untagged and its tagged frames (20 of 20 each) sent through an AF_PACKET
socket as OVS sends them."""
import json
import pathlib

import pytest

from controller import tc
from flows import qos

SHOWED = (pathlib.Path(__file__).parent / "tc_filters_tagged.json").read_text()
PORTS = {1: qos.port_qos_from_dict({"max_rate": "500M",
                                    "queues": {str(q): {"min_rate": "1M"} for q in range(5)}})}


def rule(rule_id, match, queue, priority=100):
    return qos.rule_from_dict(rule_id, {"match": match, "queue": queue, "priority": priority},
                              lambda ref: ref, PORTS, tc_classified=True)


RULES = [rule(1, {"ipv4_src": "10.0.0.1", "udp_dst": 5001}, 1, 300),
         rule(2, {"eth_src": "02:00:00:00:00:77"}, 2, 200),
         rule(3, {"eth_type": "0x88b5"}, 3),
         rule(4, {"ipv4_dst": "10.0.0.9"}, 4)]


def plan():
    return qos.tc_plan(1, PORTS[1], RULES, 212992)


def by_pref(filters):
    return {f.pref: f for f in filters}


def test_each_rule_has_an_untagged_and_an_802_1q_filter_in_rule_order():
    filters = plan().filters
    assert [(f.pref, f.protocol, f.classid) for f in filters] == [
        (100, "ip", "1:2"), (101, "0x8100", "1:2"), (102, "all", "1:3"), (103, "0x8100", "1:3"),
        (104, "0x88b5", "1:4"), (105, "0x8100", "1:4"), (106, "ip", "1:5"),
        (107, "0x8100", "1:5")]


def test_tagged_keys_check_the_ethertype_behind_the_tag_and_shift_the_macs():
    tagged = by_pref(plan().filters)
    # IPv4 behind the tag: the 16 bits before the network header (word -4, low half)
    ip_keys = qos.u32_keys(by_pref(plan().filters)[100].selectors)
    assert tagged[101].identity()[3] == ip_keys | {(0x0800, 0xFFFF, -4)}
    assert tagged[105].identity()[3] == {(0x88B5, 0xFFFF, -4)}
    # the source MAC 4 bytes further back than `match ether src` puts it
    untagged_mac = qos.u32_keys(tagged[102].selectors)
    assert untagged_mac == {(0x02000000, 0xFFFFFFFF, -8), (0x00770000, 0xFFFF0000, -4)}
    assert tagged[103].identity()[3] == {(v, m, off - 4) for v, m, off in untagged_mac}


def test_the_plan_reads_back_from_real_tc_as_itself():
    assert tc.parse_filters(SHOWED) == {f.identity() for f in plan().filters}
    # and a tagged filter with tc's `match ether` offsets (wrong behind a tag) would not
    wrong = qos.TcFilter(103, "0x8100", ("match ether src 02:00:00:00:00:77",), "1:3")
    assert wrong.identity() not in tc.parse_filters(SHOWED)
    # the fixture really has the 802.1Q filters (tc names the protocol)
    assert sum(1 for f in json.loads(SHOWED) if f["protocol"] == "802.1Q"
               and "flowid" in f.get("options", {})) == 4


def test_a_catch_all_needs_no_tagged_twin_and_u16_keys_pack_like_tc():
    catch_all = qos.tc_plan(1, PORTS[1], [rule(9, {}, 1)], 212992).filters
    assert [(f.pref, f.protocol) for f in catch_all] == [(100, "all")]
    assert qos.u32_keys(["match u16 0x1389 0xffff at 22"]) == {(0x1389, 0xFFFF, 20)}
    assert qos.u32_keys(["match u16 0x1389 0xffff at 20"]) == {(0x13890000, 0xFFFF0000, 20)}
    with pytest.raises(ValueError, match="no u32 key"):
        qos.u32_keys(["match u8 1 0xff at 0"])
