"""The `sdn` command against a running controller driving real switches."""
import json
import subprocess
import sys

import pytest

from controller import pipeline
from flows.spec import Owner
from mininet_topos import harness
from mininet_topos.topos import VLAN_TRUNK_PAIR_CONFIG
from tests.support.scrape import scrape

pytestmark = pytest.mark.integration
# the package the `sdn` console script runs (sdn.main:main, tests/unit/test_cli.py), run
# as `python -m sdn` so that a worktree's PYTHONPATH is honoured (the installed script
# reads its entry point from the editable install's metadata)
SDN = [sys.executable, "-m", "sdn"]


def sdn(controller, *args):
    result = subprocess.run([*SDN, "--url", f"http://127.0.0.1:{controller.rest_port}", *args],
                            capture_output=True, text=True, timeout=30)
    return result.returncode, result.stdout, result.stderr


def test_the_cli_shows_and_changes_vlans_on_a_live_network(vlan_pair):
    controller, network = vlan_pair()
    h1, h2, h3 = network["h1"], network["h2"], network["h3"]
    assert harness.ping(h1, h3) and not harness.ping(h2, h3)

    code, out, _ = sdn(controller, "switches")
    assert code == 0 and out.splitlines()[0].split()[:4] == ["DPID", "NAME", "MODE", "MACS"]
    assert {line.split()[0] for line in out.splitlines()[1:]} == \
        {"0000000000000001", "0000000000000002"}
    code, out, _ = sdn(controller, "--json", "macs", "1")
    assert code == 0 and h1.MAC() in {m["mac"] for m in json.loads(out)}

    code, out, _ = sdn(controller, "vlan", "set", "1", "2", "--tag", "10")   # h2 into VLAN 10
    assert code == 0 and "access" in out and " 10 " in f" {out} "
    assert harness.wait_until(lambda: harness.ping(h2, h3), 5)
    code, out, _ = sdn(controller, "vlans")
    assert code == 0 and any(line.split()[:3] == ["10", "0000000000000001", "2"]
                             for line in out.splitlines())

    code, _, err = sdn(controller, "vlan", "set", "1", "2", "--tag", "5000")  # the API says no
    assert code == 1 and "tag must be" in err and "HTTP 400" in err
    code, _, err = sdn(controller, "macs", "99")
    assert code == 1 and "no switch" in err and "HTTP 404" in err
    code, _, err = sdn(controller, "vlan", "set", "1", "2")                   # the CLI says no
    assert code == 2 and "--tag" in err
    code, _, err = subprocess.run([*SDN, "--url", "http://127.0.0.1:9", "switches"],
                                  capture_output=True, text=True).returncode, None, None
    assert code == 3
    code, out, _ = sdn(controller, "vlan", "clear", "1", "2")
    assert code == 0 and "trunk" in out

    # where a frame from h1 to h3 goes on s1, and whose entries decided it
    flow = f"in_port=1,dl_src={h1.MAC()},dl_dst={h3.MAC()},dl_type=0x0800"
    code, out, _ = sdn(controller, "trace", "1", flow)
    assert code == 0, out
    assert "<- vlan/" in out and "<- l2_switch/host" in out, out
    assert "output:3" in out or "Datapath actions" in out
    code, out, _ = sdn(controller, "--json", "trace", "s1", flow)
    owners = [rule["owner"] for rule in json.loads(out)["rules"]]
    assert owners[0].startswith("vlan/") and "l2_switch/host" in owners, owners
    code, _, err = sdn(controller, "trace", "nosuchbridge", flow)
    assert code == 2 and "unknown bridge" in err


def test_metrics_count_what_happens_on_a_live_network(vlan_pair):
    controller, network = vlan_pair()
    h1, h3 = network["h1"], network["h3"]
    assert harness.ping(h1, h3, count=3)
    before = scrape(controller)
    # a source the switch has not seen: one packet-in on s1, learned in VLAN 10 there
    harness.send_frames(h1, [harness.ethernet_frame("02:aa:00:00:00:01", "ff:ff:ff:ff:ff:ff")])
    # per-switch metrics: the datapath id and the bridge's name
    s1 = (("dp_name", "s1"), ("dpid", "0000000000000001"))
    s2 = (("dp_name", "s2"), ("dpid", "0000000000000002"))
    assert harness.wait_until(lambda: scrape(controller).get(
        ("sdn_learned_macs", s1 + (("vlan", "10"),))) == 3, 5)
    after = scrape(controller)
    assert after[("sdn_switches_connected", (("app", "l2_switch"),))] == 2
    assert after[("sdn_switches_connected", (("app", "vlan"),))] == 2
    packet_ins = after[("sdn_packet_ins_total", s1)]
    assert packet_ins > before.get(("sdn_packet_ins_total", s1), 0)
    assert after[("sdn_flow_mods_total", (("app", "l2_switch"),))] > \
        before[("sdn_flow_mods_total", (("app", "l2_switch"),))]      # hosts learned
    assert after[("sdn_learned_macs", s2 + (("vlan", "10"),))] == 3  # h1, h3, new
    vlan_entries = sum(v for (name, labels), v in after.items()
                       if name == "sdn_flows" and ("app", "vlan") in labels)
    dumped = sum(len([f for f in network.flows(s.name) if f.app_id == pipeline.APP_IDS["vlan"]])
                 for s in network.switches)
    assert vlan_entries == dumped > 0


def test_a_plan_is_what_the_switch_has_and_dump_flows_names_each_owner(vlan_pair, tmp_path):
    """`sdn plan --only flows` is a file ovs-ofctl diff-flows compares with the live switch:
    the only entries the switch has beyond the plan are the hosts learned since it
    connected; and `sdn dump-flows` names the app of every entry the controller added."""
    controller, network = vlan_pair()
    config = tmp_path / "pair.yaml"
    config.write_text(json.dumps(dict(VLAN_TRUNK_PAIR_CONFIG, l2_switch={"mode": "reactive"})))
    s1 = network["s1"]
    ports = ",".join(f"{number}={intf.name}" for intf, number in s1.ports.items() if number > 0)
    code, out, err = sdn(controller, "plan", str(config), "--switch", "s1", "--dpid", "1",
                         "--ports", ports, "--only", "flows")
    assert code == 0, err
    planned = tmp_path / "plan.txt"
    planned.write_text(out)
    diff = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "diff-flows", "s1", str(planned)],
                          capture_output=True, text=True, timeout=30)
    assert diff.returncode in (0, 2), diff.stderr       # 2: there are differences
    extra = [line for line in diff.stdout.splitlines() if line.startswith("-")]
    missing = [line for line in diff.stdout.splitlines() if line.startswith("+")]
    assert missing == [], diff.stdout
    host = f"cookie={pipeline.cookie(Owner('l2_switch', 'host')):#x}"
    assert all(host in line for line in extra), diff.stdout

    code, out, err = sdn(controller, "--json", "dump-flows", "s1")
    assert code == 0, err
    entries = json.loads(out)["flows"]
    assert len(entries) == len(network.dump_flows("s1"))
    assert {e["owner"] for e in entries} >= {"pipeline/miss", "vlan/default", "vlan/flood"}
    assert "not ours" not in {e["owner"] for e in entries}
    assert {(e["table"], e["table_name"]) for e in entries} >= {(0, "ingress"),
                                                                (pipeline.table_id("flood"), "flood")}
    code, out, _ = sdn(controller, "dump-flows", "1", "--app", "vlan")
    assert code == 0 and out.strip() and all(line.startswith("vlan/") for line in
                                             out.splitlines())
    code, _, err = sdn(controller, "dump-flows", "nosuchbridge")
    assert code == 2 and "nosuchbridge" in err
