"""`sdn dump-flows` (sdn/dump.py): an ovs-ofctl dump read with OVS's own parser, each
entry labelled with the app its cookie names and its table's name."""
import io
import json
import subprocess

from controller import pipeline
from flows.spec import Owner
from sdn import dump
from sdn import main as cli

VLAN = pipeline.cookie(Owner("vlan", "default"))
MISS = pipeline.cookie(Owner("pipeline", "miss"))
HOST = pipeline.cookie(Owner("l2_switch", "host", 7))
DUMP = f"""\
 cookie={MISS:#x}, duration=5.104s, table=0, n_packets=0, n_bytes=0, priority=0 actions=goto_table:1
 cookie={VLAN:#x}, duration=5.1s, table=0, n_packets=12, n_bytes=840, idle_age=1, priority=30,in_port=1,vlan_tci=0x1000/0x1fff actions=set_field:4106->vlan_vid,goto_table:1
 cookie={HOST:#x}, duration=2.0s, table=10, n_packets=3, n_bytes=294, idle_timeout=300, idle_age=0, priority=100,dl_vlan=10,dl_dst=00:00:00:00:00:01 actions=pop_vlan,output:1
 cookie=0x0, duration=9.0s, table=0, n_packets=1, n_bytes=60, priority=0 actions=NORMAL
 cookie=0x0, duration=2.0s, table=1, n_packets=0, n_bytes=0, importance=4, actions=drop
"""
TUNNEL_DUMP = f""" cookie={MISS:#x}, duration=1s, table=20, n_packets=0, n_bytes=0, priority=0 actions=resubmit(,21)
 cookie={MISS:#x}, duration=1s, table=0, n_packets=0, n_bytes=0, priority=0 actions=drop
"""


def test_each_entry_names_its_app_purpose_and_table():
    entries = dump.labelled(DUMP)
    assert [(e["owner"], e["table"], e["table_name"], e["priority"]) for e in entries] == [
        ("pipeline/miss", 0, "ingress", 0), ("vlan/default", 0, "ingress", 30),
        ("l2_switch/host", 10, "l2_dst", 100), ("not ours", 0, "ingress", 0),
        ("not ours", 1, "police", 32768)]   # another tool's: no match, so no priority shown
    assert entries[1]["match"] == "in_port=1,vlan_tci=0x1000/0x1fff"
    assert entries[1]["actions"] == "set_field:4106->vlan_vid,goto_table:1"
    assert (entries[1]["n_packets"], entries[1]["n_bytes"]) == (12, 840)
    assert entries[2]["cookie"] == f"{HOST:#x}"


def test_a_tunnel_bridge_is_read_with_the_tunnel_pipelines_names():
    assert [e["table_name"] for e in dump.labelled(TUNNEL_DUMP)] == ["tun_ucast", "tun_in"]


def test_the_cli_prints_and_filters_by_app(monkeypatch):
    def fake_run(argv, **kwargs):
        assert argv[:4] == ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows"] and argv[4] == "s1"
        return subprocess.CompletedProcess(argv, 0, DUMP, "")
    monkeypatch.setattr(dump.subprocess, "run", fake_run)
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["dump-flows", "s1", "--app", "vlan"], out, err) == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vlan/default  table=0(ingress) priority=30,")
    assert "n_packets=12" in lines[0]
    out = io.StringIO()
    assert cli.main(["--json", "dump-flows", "s1"], out, err) == 0
    assert len(json.loads(out.getvalue())["flows"]) == 5


def test_a_failing_ovs_ofctl_is_a_usage_error_not_a_traceback(monkeypatch):
    monkeypatch.setattr(dump.subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(
        argv, 1, "", "ovs-ofctl: nobr is not a bridge or a socket\n"))
    err = io.StringIO()
    assert cli.main(["dump-flows", "nobr"], io.StringIO(), err) == 2
    assert err.getvalue() == "sdn: dump-flows: ovs-ofctl: nobr is not a bridge or a socket\n"
