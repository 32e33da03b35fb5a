"""apps/qos.py driven by synthetic OpenFlow events with a fake OVSDB and a fake tc: what
it asks of each, what it sends the switch, and its REST API at the WSGI level."""
import json

import pytest
from ryu.controller import ofp_event
from ryu.lib import hub
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from apps import qos as qos_app
from controller import pipeline
from controller.state import SqliteStateStore
from flows import qos
from flows.spec import MeterRef
from mininet_topos.topos import QOS_LAB_CONFIG
from tests.support.l2_app import call, flow_mods
from tests.support.qos_app import LAB_CLASSES, bring_up, make_app


@pytest.fixture
def lab_app(monkeypatch, tmp_path):
    return make_app(monkeypatch, tmp_path, QOS_LAB_CONFIG["qos"])


def qos_adds(datapath):
    return [m for m in flow_mods(datapath) if m.command == ofp.OFPFC_ADD
            and m.cookie >> 56 == pipeline.APP_IDS["qos"]
            and m.cookie != pipeline.cookie(pipeline.canary_owner("qos"))]


def test_lab_config_builds_the_htb_tree_the_rules_and_the_tc_classifier(lab_app):
    datapath = bring_up(lab_app)
    owner, other, queues = lab_app.ovsdb.qos["s1-eth4"]
    assert owner == "qos" and other == {"max-rate": "10000000"}
    assert {q: c["min-rate"] for q, c in queues.items()} == {0: "3000000", 1: "1000000",
                                                             2: "6000000"}
    adds = qos_adds(datapath)
    rules = [m for m in adds if m.table_id == pipeline.table_id("qos")]
    assert [(m.match["ipv4_src"], [type(a).__name__ for a in m.instructions[0].actions])
            for m in rules] == [
        (ip, ["OFPActionSetQueue", "OFPActionSetField"])
        for ip in ("192.168.100.100", "192.168.100.101", "192.168.100.102")]
    # and the port the rules name (4) leaves from the egress stage: l2_dst -> flood -> 4
    assert sorted((m.table_id, m.match["reg1"]) for m in adds if m not in rules) == [
        (pipeline.table_id("l2_dst"), 4), (pipeline.table_id("flood"), 4)]
    (lines,) = lab_app.tc.applied
    assert lines[0] == "filter del dev s1-eth4 parent 1:" and len(lines) == 10
    assert "protocol ip prio 102 " in lines[6]   # each rule: untagged, then 802.1Q
    assert "match ip src 192.168.100.101/32 flowid 1:2" in lines[6]
    assert "protocol 0x8100 prio 103 " in lines[7] and lines[7].endswith("flowid 1:2")
    status, body, _ = call(lab_app, "GET", "/v1/qos/1/s1-eth4")
    assert status == 200 and body["configured"] and body["tc_problems"] == []
    assert body["queue_mechanism"].startswith("tc u32 filters")


def test_a_reconnect_leaves_correct_ovsdb_rows_alone(lab_app):
    bring_up(lab_app)
    calls = len([c for c in lab_app.ovsdb.calls if c[0] == "set_port_qos"])
    bring_up(lab_app)
    assert len([c for c in lab_app.ovsdb.calls if c[0] == "set_port_qos"]) == calls == 1


@pytest.mark.parametrize("body", [b'{"max_rate": "10M", "queues": {"0": {"min_rate": "11M"}}}',
                                  b'{"max_rate": "1M", "queues": {"0": {"min_rate": "1M"}, '
                                  b'"1": {"min_rate": "1"}}}',
                                  b'{"max_rate": -1, "queues": {"0": {"min_rate": 0}}}',
                                  b'{"max_rate": "lots", "queues": {"0": {"min_rate": 0}}}',
                                  b'{"ingress_policing": {"rate": "x"}}', b"[]", b"{"])
def test_bad_port_qos_is_a_400_and_changes_nothing(lab_app, tmp_path, body):
    bring_up(lab_app)
    before = list(lab_app.ovsdb.calls)
    status, reply, _ = call(lab_app, "PUT", "/v1/qos/1/s1-eth2", body)
    assert status == 400 and reply["error"]
    assert lab_app.ovsdb.calls == before and SqliteStateStore("qos", tmp_path).load()[0] == {}


def test_policing_via_rest_sets_ovsdb_and_a_meter_and_persists(lab_app, monkeypatch, tmp_path):
    datapath = bring_up(lab_app)
    status, body, _ = call(lab_app, "PUT", "/v1/qos/1/1",
                           b'{"ingress_policing": {"rate": "5M", "burst": "500k"}}')
    assert status == 200 and body["ingress_policing"] == {"rate": 5_000_000, "burst": 500_000}
    assert body["policing_mechanism"].startswith("OpenFlow meter")
    assert lab_app.ovsdb.policing["s1-eth1"] == (5000, 500)
    meters = [m for m in datapath.sent if isinstance(m, parser.OFPMeterMod)
              and m.command == ofp.OFPMC_ADD]
    assert [m.meter_id for m in meters] == [pipeline.meter_id(MeterRef(qos.POLICE, 1))]
    assert SqliteStateStore("qos", tmp_path).load()[0]["0000000000000001"]["ports"] == {
        "1": {"ingress_policing": {"rate": "5M", "burst": "500k"}}}
    again = make_app(monkeypatch, tmp_path, QOS_LAB_CONFIG["qos"])
    bring_up(again)
    assert call(again, "GET", "/v1/qos/1/s1-eth1")[1]["ingress_policing"]["rate"] == 5_000_000
    # removing it switches the policer off
    status, body, _ = call(lab_app, "DELETE", "/v1/qos/1/s1-eth1")
    assert status == 200 and not body["configured"]
    assert lab_app.ovsdb.policing["s1-eth1"] == (0, 0)


def test_rules_over_rest(lab_app):
    datapath = bring_up(lab_app)
    path = "/v1/qos/0000000000000001/rules"
    assert [r["id"] for r in call(lab_app, "GET", path)[1]] == [1, 2, 3]
    status, rule, _ = call(lab_app, "POST", path, json.dumps(
        {"match": {"udp_dst": 5001}, "queue": 2, "meter": {"rate": "2M"}}).encode())
    assert status == 201 and rule["id"] == 4 and rule["match"]["ip_proto"] == 17
    assert pipeline.meter_id(MeterRef(qos.RULES, 4)) in [
        m.meter_id for m in datapath.sent if isinstance(m, parser.OFPMeterMod)]
    assert "match ip dport 5001 0xffff" in lab_app.tc.applied[-1][-1]  # tc follows the rules
    for body, status_code, message in (
            ({"match": {"udp_dst": 5001}, "queue": 1}, 409, "rule 4 has the same match"),
            ({"id": 2, "match": {"udp_dst": 7}, "queue": 1}, 409, "rule 2 exists"),
            ({"match": {"udp_dst": 7}, "queue": 8}, 400, "no port of this switch has a queue 8"),
            ({"match": {"in_port": 1}, "queue": 1}, 400, "cannot see in_port"),
            ({"match": {"udp_dst": 7}, "queue": 1, "port": 9}, 400, "no port 9"),
            ({"id": 0, "match": {}, "queue": 1}, 400, "id must be an integer")):
        status, reply, _ = call(lab_app, "POST", path, json.dumps(body).encode())
        assert (status, message in reply["error"]) == (status_code, True), reply
    status, reply, _ = call(lab_app, "GET", path + "/4")
    assert status == 200 and reply["meter"] == {"rate": 2_000_000, "burst": 200_000}
    before = datapath.table()
    datapath.sent.clear()
    status, reply, _ = call(lab_app, "DELETE", path + "/4")
    assert status == 200 and reply["id"] == 4
    assert call(lab_app, "GET", path + "/4")[0] == 404
    assert call(lab_app, "GET", path + "/x")[0] == 400
    # only rule 4 went: its flow (strictly) and its meter; the other rules were not touched
    assert qos_adds(datapath) == []
    assert [(m.command, m.match.get("udp_dst")) for m in flow_mods(datapath)] == [
        (ofp.OFPFC_DELETE_STRICT, 5001)]
    assert [(m.command, m.meter_id) for m in datapath.sent if isinstance(m, parser.OFPMeterMod)] \
        == [(ofp.OFPMC_DELETE, pipeline.meter_id(MeterRef(qos.RULES, 4)))]
    assert len(datapath.table()[0]) == len(before[0]) - 1 and datapath.table()[2] == []
    assert {s.match["ipv4_src"] for s in datapath.flows.values() if "ipv4_src" in s.match} == {
        "192.168.100.100", "192.168.100.101", "192.168.100.102"}


def test_a_port_whose_queues_rules_use_cannot_lose_them(lab_app):
    bring_up(lab_app)
    status, reply, _ = call(lab_app, "DELETE", "/v1/qos/1/s1-eth4")
    assert status == 409 and "rule(s) 1, 2, 3" in reply["error"]
    status, reply, _ = call(lab_app, "PUT", "/v1/qos/1/s1-eth4",
                            b'{"max_rate": "10M", "queues": {"0": {"min_rate": "3M"}}}')
    assert status == 409 and "rule(s) 2, 3" in reply["error"]
    assert "s1-eth4" in lab_app.ovsdb.qos
    assert call(lab_app, "DELETE", "/v1/qos/1/rules")[1] == {"deleted": [1, 2, 3]}
    status, reply, _ = call(lab_app, "DELETE", "/v1/qos/1/s1-eth4")
    assert status == 200 and "s1-eth4" not in lab_app.ovsdb.qos


def test_ovsdb_refusals_are_reported_and_change_nothing(lab_app, tmp_path):
    bring_up(lab_app)
    lab_app.ovsdb.foreign.add("s1-eth3")
    body = b'{"max_rate": "5M", "queues": {"0": {"min_rate": "1M"}}}'
    status, reply, _ = call(lab_app, "PUT", "/v1/qos/1/s1-eth3", body)
    assert status == 409 and "set by someone else" in reply["error"]
    lab_app.ovsdb.foreign.clear()
    lab_app.ovsdb.down = True
    status, reply, _ = call(lab_app, "PUT", "/v1/qos/1/s1-eth3", body)
    assert status == 502 and "cannot reach OVSDB" in reply["error"]
    assert SqliteStateStore("qos", tmp_path).load()[0] == {}
    assert call(lab_app, "GET", "/v1/qos/1/s1-eth3")[1]["configured"] is False


def test_a_replaced_tc_tree_is_reported_and_filters_are_restored(lab_app, monkeypatch):
    bring_up(lab_app, answer=queue_stats_answer(lab_app, {"bytes": 0}))
    lab_app.tc.root, lab_app.tc.classes = ("htb", "5:"), {}   # what TCLink(bw=...) leaves
    lab_app.tc.filters, lab_app.tc.leaves = frozenset(), {}
    lab_app.watch(lab_app.switches[1])
    problems = call(lab_app, "GET", "/v1/qos/1/s1-eth4")[1]["tc_problems"]
    assert len(problems) == 1 and "TCLink" in problems[0]
    assert len(lab_app.tc.applied) == 1     # nothing is put on a tree that is not OVS's
    body = {k: v for k, v in QOS_LAB_CONFIG["qos"]["ports"][0].items()
            if k not in ("switch", "port")}
    lab_app.ovsdb.calls.clear()
    monkeypatch.setattr(qos_app, "TREE_WAIT", 0.0)  # the fake tree stays broken
    assert call(lab_app, "PUT", "/v1/qos/1/s1-eth4", json.dumps(body).encode())[0] == 200
    assert [c[0] for c in lab_app.ovsdb.calls if "port_qos" in c[0]] == [
        "clear_port_qos", "set_port_qos"]  # the same body again: OVS rebuilds its tree
    lab_app.tc.root, lab_app.tc.classes = ("htb", "1:"), dict(LAB_CLASSES)
    lab_app.watch(lab_app.switches[1])      # OVS rebuilt it, our filters are gone: back
    assert call(lab_app, "GET", "/v1/qos/1/s1-eth4")[1]["tc_problems"] == []
    assert len(lab_app.tc.applied) == 2
    assert {f[:2] for f in lab_app.tc.filters} == {(100, "1:1"), (101, "1:1"), (102, "1:2"),
                                                   (103, "1:2"), (104, "1:3"), (105, "1:3")}
    lab_app.watch(lab_app.switches[1])      # all in place: left alone
    assert len(lab_app.tc.applied) == 2


def test_tc_is_rewritten_only_when_its_plan_changes_or_the_device_lost_it(lab_app,
                                                                          monkeypatch, tmp_path):
    bring_up(lab_app)
    assert len(lab_app.tc.applied) == 1
    restarted = make_app(monkeypatch, tmp_path, QOS_LAB_CONFIG["qos"])
    restarted.tc = lab_app.tc                # the same devices, read back
    bring_up(restarted)
    assert len(lab_app.tc.applied) == 1     # a restart finds the filters right: untouched
    assert call(lab_app, "PUT", "/v1/qos/1/s1-eth2",
                b'{"ingress_policing": {"rate": "5M"}}')[0] == 200   # programs the switch
    lab_app.watch(lab_app.switches[1])
    assert len(lab_app.tc.applied) == 1     # same filters and leaves: left alone
    path = "/v1/qos/1/rules"
    assert call(lab_app, "POST", path, b'{"match": {"udp_dst": 5001}, "queue": 2}')[0] == 201
    assert len(lab_app.tc.applied) == 2 and "dport 5001" in lab_app.tc.applied[-1][-1]
    rule = {"match": {"udp_dst": 5002}, "queue": 2}   # same pref and class, other selector
    assert call(lab_app, "DELETE", f"{path}/4")[0] == 200
    assert call(lab_app, "POST", path, json.dumps(rule).encode())[0] == 201
    assert "dport 5002" in lab_app.tc.applied[-1][-1]
    lab_app.tc.filters, lab_app.tc.leaves = frozenset(), {}   # OVS rebuilt the tree
    count = len(lab_app.tc.applied)
    lab_app.watch(lab_app.switches[1])
    assert len(lab_app.tc.applied) == count + 1 and lab_app.tc.filters


def queue_stats_answer(app, counters):
    """A switch that answers queue-stats requests: each time 1 MB more per queue number."""
    def answer(msg):
        if isinstance(msg, parser.OFPQueueStatsRequest):
            counters["bytes"] += 1_000_000
            body = [parser.OFPQueueStats(port_no=4, queue_id=q, tx_bytes=counters["bytes"] * q,
                                         tx_packets=10, tx_errors=q, duration_sec=1,
                                         duration_nsec=0) for q in (0, 1, 2)]
            reply = parser.OFPQueueStatsReply(msg.datapath, body=body)
            reply.xid, reply.flags = msg.xid, 0
            hub.spawn(app._multipart_reply, ofp_event.EventOFPQueueStatsReply(reply))
    return answer


def test_queue_stats_give_counters_and_a_rate(lab_app):
    clock = iter([100.0, 102.0])
    switch_answers = queue_stats_answer(lab_app, {"bytes": 0})
    bring_up(lab_app, answer=switch_answers)
    lab_app.clock = lambda: next(clock)
    lab_app.sample(lab_app.switches[1], 4)
    status, stats, _ = call(lab_app, "GET", "/v1/qos/1/s1-eth4/stats")
    assert status == 200 and stats["rate_interval_s"] == 2.0
    assert stats["queues"]["2"] == {"tx_bytes": 4_000_000, "tx_packets": 10, "tx_errors": 2,
                                    "rate_bps": 8_000_000, "min_rate": 6_000_000,
                                    "max_rate": 10_000_000}
    assert call(lab_app, "GET", "/v1/qos/1/s1-eth2/stats")[0] == 404


def test_kernel_datapath_uses_set_queue_alone_and_ovs_policing(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, QOS_LAB_CONFIG["qos"], kind="system")
    datapath = bring_up(app)
    assert app.tc.applied == []   # the tree is checked, not changed
    status, rule, _ = call(app, "POST", "/v1/qos/1/rules",
                           b'{"match": {"in_port": "s1-eth1"}, "queue": 0}')
    assert status == 201 and rule["match"] == {"in_port": 1}
    call(app, "PUT", "/v1/qos/1/s1-eth2", b'{"ingress_policing": {"rate": "5M"}}')
    assert app.ovsdb.policing["s1-eth2"] == (5000, 500)
    assert not [m for m in datapath.sent if isinstance(m, parser.OFPMeterMod)
                and m.command == ofp.OFPMC_ADD]
    assert call(app, "GET", "/v1/qos")[1][0]["queue_mechanism"].startswith("set_queue")


def test_paths_and_methods(lab_app):
    bring_up(lab_app)
    status, _, resp = call(lab_app, "POST", "/v1/qos/1/s1-eth4")
    assert status == 405 and resp.headers["Allow"] == "DELETE, GET, PUT"
    status, _, resp = call(lab_app, "PUT", "/v1/qos/1/rules")
    assert status == 405 and resp.headers["Allow"] == "DELETE, GET, POST"
    assert call(lab_app, "GET", "/v1/qos/1/s1-eth9")[0] == 400
    assert call(lab_app, "GET", "/v1/qos/7/s1-eth4")[0] == 404
    assert [s["dpid"] for s in call(lab_app, "GET", "/v1/qos")[1]] == ["0000000000000001"]


def test_bad_config_is_refused_at_start(monkeypatch, tmp_path):
    with pytest.raises(SystemExit, match="ports\\[0\\] \\(s1 s1-eth4\\): the queues' min_rates"):
        make_app(monkeypatch, tmp_path, {"ports": [
            {"switch": "s1", "port": "s1-eth4", "max_rate": "1M",
             "queues": {"0": {"min_rate": "1M"}, "1": {"min_rate": "1M"}}}]})
    with pytest.raises(SystemExit, match="check_interval"):
        make_app(monkeypatch, tmp_path, {"check_interval": 0})


def test_a_config_port_the_switch_lacks_is_reported_once(monkeypatch, tmp_path):
    section = dict(QOS_LAB_CONFIG["qos"], ports=QOS_LAB_CONFIG["qos"]["ports"] + [
        {"switch": "s1", "port": "s1-eth9", "ingress_policing": {"rate": "1M"}}])
    app = make_app(monkeypatch, tmp_path, section)
    bring_up(app, answer=queue_stats_answer(app, {"bytes": 0}))
    for _ in range(3):
        app.watch(app.switches[1])
    (switch,) = call(app, "GET", "/v1/qos")[1]
    assert switch["problems"] == ["config: no port 's1-eth9' on this switch"]


def test_a_controller_restarted_on_an_old_state_document_finds_its_policers(monkeypatch,
                                                                             tmp_path):
    """The document as a controller from before int-keyed state wrote it."""
    SqliteStateStore("qos", tmp_path).save({"0000000000000001": {"ports": {
        "1": {"ingress_policing": {"rate": "5M", "burst": "500k"}}}}}, 0)
    app = make_app(monkeypatch, tmp_path, QOS_LAB_CONFIG["qos"])
    bring_up(app)
    assert call(app, "GET", "/v1/qos/1/s1-eth1")[1]["ingress_policing"]["rate"] == 5_000_000
    assert app.ovsdb.policing["s1-eth1"] == (5000, 500)


def test_a_change_another_writer_saved_over_is_a_409_and_ovsdb_goes_back(lab_app, tmp_path):
    """OVSDB is written before the state is saved (OVSDB may refuse); when the save then
    finds another writer's newer state, OVSDB is put back as that state says."""
    bring_up(lab_app)
    before = lab_app.ovsdb.policing.get("s1-eth1", (0, 0))
    other = SqliteStateStore("qos", tmp_path)
    other.save({"0000000000000001": {"rules": {}}}, other.load()[1])
    status, body, _ = call(lab_app, "PUT", "/v1/qos/1/1",
                           b'{"ingress_policing": {"rate": "5M", "burst": "500k"}}')
    assert status == 409 and "changed by another writer" in body["error"]
    assert lab_app.ovsdb.policing.get("s1-eth1", (0, 0)) == before
    assert other.load()[0] == {"0000000000000001": {"rules": {}}}
    status, body, _ = call(lab_app, "PUT", "/v1/qos/1/1",        # the retry lands
                           b'{"ingress_policing": {"rate": "5M", "burst": "500k"}}')
    assert status == 200 and lab_app.ovsdb.policing["s1-eth1"] == (5000, 500)


def test_another_writers_state_taken_while_ovsdb_is_written_makes_the_change_a_409(
        lab_app, monkeypatch, tmp_path):
    """The poll may take another writer's state while a PUT waits on OVSDB: the PUT's
    document was built from the state before, so saving it would lose that writer's
    change; it is a 409 instead."""
    bring_up(lab_app)
    other, real, polled = SqliteStateStore("qos", tmp_path), lab_app.sync_ovsdb, []
    theirs = {"0000000000000001": {"rules": {"7": {"match": {"udp_dst": 9}, "queue": 1}}}}

    def sync_then_poll(*args, **kwargs):   # the poll greenlet runs while OVSDB is talked to
        if not polled:
            polled.append(other.save(theirs, other.load()[1]))
            spawn, lab_app.spawn = lab_app.spawn, lambda *a, **k: None
            assert lab_app.store.poll()
            lab_app.spawn = spawn
        return real(*args, **kwargs)
    monkeypatch.setattr(lab_app, "sync_ovsdb", sync_then_poll)
    status, body, _ = call(lab_app, "PUT", "/v1/qos/1/1",
                           b'{"ingress_policing": {"rate": "5M", "burst": "500k"}}')
    assert status == 409 and other.load()[0] == theirs
