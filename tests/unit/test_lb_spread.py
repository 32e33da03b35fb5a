"""The load balancer's spread mode: a destination subnet over ports by a select group,
no NAT (flows/lb_spread.py on the table simulator), and its REST API through the app
(apps/lb_spreads.py): made, listed, persisted, deleted; bad input a 400 that changes
nothing."""
import json

import pytest
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import ofcompile, pipeline
from controller.state import SqliteStateStore
from flows import lb_spread
from flows.spec import GroupSpec
from tests.support.l2_app import FakeDatapath, call
from tests.support.lb_app import connect, make_app
from tests.support.ofsim import Switch, frame
from tests.support.vlan_app import port_desc

SPREAD = {"switch": "0000000000000001", "subnet": "192.168.2.0/24", "ports": [2, 3]}
PORTS = {1: "s1-eth1", 2: "s1-eth2", 3: "s1-eth3", 4: "s1-eth4"}


def to(dst, sport=5000, port=1):
    return frame(port, "00:00:00:00:00:01", "02:00:00:00:00:fe", ipv4_src="10.0.0.1",
                 ipv4_dst=dst, ip_proto=17, udp_src=sport, udp_dst=9)


def spread_switch(spread):
    switch = Switch([1, 2, 3, 4])
    return switch.apply(pipeline.table_misses() + lb_spread.spreads_on([spread], 1))


def make(body=SPREAD, spread_id=1):
    return lb_spread.spread_from_dict(spread_id, 1, body, lambda ref: int(ref))


def test_a_subnet_is_spread_over_both_ports_unchanged_one_flow_on_one_port():
    switch = spread_switch(make())
    seen = {}
    for host in range(1, 41):
        result = switch.process(to(f"192.168.2.{host}"))
        (port, (pkt,)), = result.outputs.items()
        assert pkt == dict(to(f"192.168.2.{host}"))          # no NAT: as it came
        seen.setdefault(port, []).append(host)
        assert switch.process(to(f"192.168.2.{host}")).outputs.keys() == {port}  # same flow
    assert set(seen) == {2, 3} and all(len(hosts) >= 10 for hosts in seen.values()), seen
    # outside the subnet the spread takes nothing
    assert switch.process(to("192.168.3.1")).outputs == {}


def test_the_spread_group_compiles_to_a_select_group_with_a_bucket_per_port():
    items = lb_spread.spread_flows(make(dict(SPREAD, ports=[2, 3, 4])))
    (group,) = [i for i in items if isinstance(i, GroupSpec)]
    mod = ofcompile.compile_all(FakeDatapath(1), [group])[0]
    assert isinstance(mod, parser.OFPGroupMod) and mod.type == 1   # OFPGT_SELECT
    assert [[a.port for a in b.actions] for b in mod.buckets] == [[2], [3], [4]]
    assert lb_spread.forget_spread(1)[1].ref == group.ref


@pytest.mark.parametrize("body, message", [
    (dict(SPREAD, subnet="192.168.2.0/33"), "IPv4 prefix"),
    (dict(SPREAD, subnet="192.168.2.1/24"), "host bits"),
    (dict(SPREAD, subnet=24), "IPv4 prefix"),
    (dict(SPREAD, ports=[2]), "2 to 64"),
    (dict(SPREAD, ports=[2, 2]), "twice"),
    (dict(SPREAD, ports=[2, 9]), "no port 9"),
    (dict(SPREAD, ports=[2, True]), "numbers or names"),
    ({"switch": "0000000000000001", "ports": [2, 3]}, "needs subnet"),
    ({"subnet": "192.168.2.0/24", "ports": [2, 3]}, "needs switch"),
    (dict(SPREAD, switch="0xzz"), "0xzz"),
    (dict(SPREAD, subnet="192.168.2.128/25"), "overlaps spread 1"),
    (dict(SPREAD, subnet="10.0.0.0/16"), "load balancer's subnet"),
    (dict(SPREAD, mode="x"), "mode"),
])
def test_bad_spreads_are_a_400_that_changes_nothing(monkeypatch, tmp_path, body, message):
    app, _ = app_with_ports(monkeypatch, tmp_path)
    assert call(app, "POST", "/v1/lb/spreads", json.dumps(SPREAD).encode())[0] == 201
    stored = SqliteStateStore("lb", tmp_path).load()[0]
    code, reply, _ = call(app, "POST", "/v1/lb/spreads", json.dumps(body).encode())
    assert code == 400 and message in reply["error"], reply
    assert [s["id"] for s in call(app, "GET", "/v1/lb/spreads")[1]] == [1]
    assert SqliteStateStore("lb", tmp_path).load()[0] == stored


def app_with_ports(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    datapath = connect(app)
    app._port_desc(port_desc(datapath, PORTS, "s1"))
    return app, datapath


def test_spreads_are_made_by_port_name_listed_persisted_and_deleted(monkeypatch, tmp_path):
    app, datapath = app_with_ports(monkeypatch, tmp_path)
    datapath.sim.ports = [1, 2, 3, 4]
    code, made, _ = call(app, "POST", "/v1/lb/spreads",
                         json.dumps(dict(SPREAD, ports=["s1-eth2", 3])).encode())
    assert code == 201 and made == {"id": 1, "switch": "0000000000000001",
                                    "subnet": "192.168.2.0/24", "ports": [2, 3],
                                    "selection_method": "dp_hash"}
    outs = {port for host in range(1, 41)
            for port in datapath.sim.process(to(f"192.168.2.{host}")).outputs}
    assert outs == {2, 3}                                   # on the switch: both ports
    assert call(app, "GET", "/v1/lb/spreads/1")[1] == made
    assert call(app, "GET", "/v1/lb/spreads/2")[0] == 404
    assert call(app, "GET", "/v1/lb/spreads/x")[0] == 400
    assert call(app, "GET", "/v1/lb/vips")[0] == 200 and len(app.vips) == 1  # VIPs untouched
    again = make_app(monkeypatch, tmp_path)                 # a restart reads it back
    assert call(again, "GET", "/v1/lb/spreads")[1] == [made]
    second = connect(again, type(datapath)(1, again))
    assert any(isinstance(f.owner.instance, int) and f.owner.purpose == "spread"
               for f in second.sim.flows("vip"))            # and installs it on connect
    assert call(app, "DELETE", "/v1/lb/spreads/1")[1] == {"deleted": 1}
    assert call(app, "GET", "/v1/lb/spreads")[1] == []
    assert not [f for f in datapath.sim.flows("vip") if f.owner.purpose == "spread"]
    assert not datapath.sim.groups.keys() & {lb_spread.spread_ref(1)}
    assert "spreads" in SqliteStateStore("lb", tmp_path).load()[0]


def test_a_vip_change_keeps_the_spreads(monkeypatch, tmp_path):
    app, _ = app_with_ports(monkeypatch, tmp_path)
    assert call(app, "POST", "/v1/lb/spreads", json.dumps(SPREAD).encode())[0] == 201
    assert call(app, "DELETE", "/v1/lb/vips/1")[0] == 200
    assert len(call(make_app(monkeypatch, tmp_path), "GET", "/v1/lb/spreads")[1]) == 1


def test_a_spread_needs_its_switch_connected(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path)
    code, reply, _ = call(app, "POST", "/v1/lb/spreads", json.dumps(SPREAD).encode())
    assert code == 404 and "no switch" in reply["error"]


def test_a_spread_takes_its_switch_by_bridge_name(monkeypatch, tmp_path):
    app, datapath = app_with_ports(monkeypatch, tmp_path)
    app.runtime.names.connected(datapath)
    app.runtime.names.named(datapath, "s1")      # what the LOCAL port of its reply says
    code, made, _ = call(app, "POST", "/v1/lb/spreads",
                         json.dumps(dict(SPREAD, switch="s1")).encode())
    assert code == 201 and made["switch"] == "0000000000000001", made
    code, reply, _ = call(app, "POST", "/v1/lb/spreads",
                          json.dumps(dict(SPREAD, switch="s9", subnet="192.168.3.0/24")).encode())
    assert code == 404 and "s9" in reply["error"]
