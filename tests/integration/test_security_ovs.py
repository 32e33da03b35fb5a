"""Security groups on real Open vSwitch, with the learning and VLAN apps in one
ryu-manager (OVS's userspace conntrack): h1 is a web server in VLAN 10 whose group lets
in TCP 80 only. h2 (VLAN 10) gets its pages, not its port 8080 and not a ping; h1's own
pings out work and their replies come back; h4 (VLAN 20) cannot get in at all. Removing
the rule cuts a live TCP connection, adding it back lets that connection go on; the
rule's counters come over REST; a bad rule is a 400 that changes nothing; a stateless
ACL drops a port's pings until it is removed."""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mininet_topos import harness
from mininet_topos.labkit import traffic
from mininet_topos.topos import Single

pytestmark = pytest.mark.integration
APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/security.py")
TCPECHO = Path(traffic.__file__).with_name("tcpecho.py")
WEB_RULE = {"direction": "ingress", "protocol": "tcp", "ports": 80}


def config(mode):
    return {"l2_switch": {"mode": mode},
            "vlan": {"ports": [{"switch": "s1", "port": f"s1-eth{n}", "tag": tag}
                               for n, tag in ((1, 10), (2, 10), (3, 10), (4, 20))]},
            "security": {"groups": {"web": [WEB_RULE]},
                         "ports": [{"switch": "s1", "port": "s1-eth1",
                                    "addresses": ["10.0.0.1"], "groups": ["web"]}]}}


def start(lab, mode):
    """The learning, VLAN and security apps on one switch of four hosts, programmed."""
    controller, network = lab(Single(k=4), config(mode), apps=APPS)
    harness.wait_vlans_programmed(controller, network)
    return controller, network


def served(client, server_ip, port, count=3):
    result = harness.http_requests(client, server_ip, port, count)
    return sum(result["served"].values())


@pytest.mark.parametrize("mode", ["reactive", "datapath"])
def test_a_web_server_behind_its_security_group(lab, mode):
    controller, network = start(lab, mode)
    h1, h2, h3, h4 = (network[f"h{i}"] for i in range(1, 5))
    servers = [harness.start_http(h1, "web", 80), harness.start_http(h1, "admin", 8080)]
    try:
        assert harness.wait_until(lambda: served(h2, h1.IP(), 80, 1) == 1, 10)
        assert served(h2, h1.IP(), 80, 5) == 5
        assert served(h2, h1.IP(), 8080, 2) == 0          # no rule for 8080
        assert not harness.ping(h2, h1)                    # nor for a ping
        assert harness.ping(h1, h2) and harness.ping(h1, h3)   # its own pings: answered
        assert harness.ping(h2, h3)                        # unbound ports: untouched
        assert served(h4, h1.IP(), 80, 1) == 0            # another VLAN: never reaches it
        status, rule = controller.rest("GET", "/v1/security/rules/1")
        assert status == 200 and rule["packets"] > 0, rule
        # bad input changes nothing
        before = controller.rest("GET", "/v1/security")[1]
        for body in ({"direction": "in"}, {"direction": "ingress", "ports": 80},
                     {"direction": "ingress", "protocol": "tcp", "ports": "90-80"}):
            status, answer = controller.rest("POST", "/v1/security/groups/web/rules", body)
            assert status == 400 and "error" in answer, (body, status, answer)
        assert controller.rest("PUT", "/v1/switches/s1/ports/s1-eth2/security",
                               {"addresses": ["10.0.0.2"], "groups": ["nope"]})[0] == 400
        assert controller.rest("GET", "/v1/security")[1] == before
        # a rule added over REST opens 8080 at once
        status, added = controller.rest("POST", "/v1/security/groups/web/rules",
                                        {"direction": "ingress", "protocol": "tcp",
                                         "ports": "8000-8080", "remote": "10.0.0.0/24"})
        assert status == 201, added
        assert harness.wait_until(lambda: served(h2, h1.IP(), 8080, 1) == 1, 5)
        assert controller.rest("DELETE", f"/v1/security/rules/{added['id']}")[0] == 200
        assert harness.wait_until(lambda: served(h2, h1.IP(), 8080, 1) == 0, 5)
        # a stateless ACL: h3 (bound to nothing) may not ping, and may again once it goes
        status, acl = controller.rest("POST", "/v1/security/acls", {
            "switch": "s1", "port": "s1-eth3", "match": {"ip_proto": 1}, "action": "drop"})
        assert status == 201, acl
        assert harness.wait_until(lambda: not harness.ping(h3, h2), 5)
        assert served(h3, h1.IP(), 80, 1) == 1            # only ICMP is dropped
        status, counted = controller.rest("GET", f"/v1/security/acls/{acl['id']}")
        assert status == 200 and counted["packets"] > 0, counted
        assert controller.rest("DELETE", f"/v1/security/acls/{acl['id']}")[0] == 200
        assert harness.wait_until(lambda: harness.ping(h3, h2), 5)
    finally:
        for proc in servers:
            proc.kill()
    print(f"\nobserved ({mode}): h2 -> h1:80 served, :8080 and ping refused, h4 kept "
          f"out, rule 1 matched {rule['packets']} packets")


def test_removing_the_rule_cuts_a_live_connection_and_adding_it_back_revives_it(lab):
    controller, network = start(lab, "datapath")
    h1, h2 = network["h1"], network["h2"]
    server = h1.popen(["python3", str(TCPECHO), "serve", "80"])
    try:
        assert harness.wait_until(lambda: ":80 " in h1.cmd("ss -ltn"), 5, step=0.1)
        talker = h2.popen(["python3", str(TCPECHO), "talk", h1.IP(), "80", "13", "0.1"],
                          stdout=-1, text=True)
        started = time.time()
        time.sleep(2)                                        # 2 s of echoes
        # the preview, read from OVS's conntrack: the live connection is the one cut
        preview = subprocess.run(
            [sys.executable, "-m", "sdn", "--url", f"http://127.0.0.1:{controller.rest_port}",
             "plan", "--delete-rule", "1"], capture_output=True, text=True, timeout=30)
        status, _ = controller.rest("DELETE", "/v1/security/rules/1")
        assert status == 200
        cut_at = time.time()
        time.sleep(1)
        # the trace of the cut connection's next packet shows its entry, marked cut
        found = re.search(rf"tcp {re.escape(h2.IP())}:(\d+) ->", preview.stdout)
        traced = subprocess.run(
            [sys.executable, "-m", "sdn", "--url", f"http://127.0.0.1:{controller.rest_port}",
             "path", "s1", "2", h2.MAC(), h1.MAC(), "--proto", "tcp", "--nw-src", h2.IP(),
             "--nw-dst", h1.IP(), "--tp-src", found.group(1) if found else "1",
             "--tp-dst", "80"], capture_output=True, text=True, timeout=30)
        time.sleep(2)                                        # 3 s cut in all
        status, again = controller.rest("POST", "/v1/security/groups/web/rules", WEB_RULE)
        assert status == 201, again
        back_at = time.time()
        out, _ = talker.communicate(timeout=20)
        echoes = json.loads(out.strip().splitlines()[-1])["echoes"]
    finally:
        server.kill()
    before = [t for t in echoes if started < t < cut_at]
    during = [t for t in echoes if cut_at + 0.5 < t < back_at]
    after = [t for t in echoes if t > back_at]
    assert preview.returncode == 0, preview.stderr
    print(f"\n$ sdn plan --delete-rule 1\n{preview.stdout}")
    assert f"would cut: tcp {h2.IP()}:" in preview.stdout and \
        f"-> {h1.IP()}:80 (zone 16384" in preview.stdout, preview.stdout
    assert preview.stdout.count("would cut:") == 1, preview.stdout
    print(f"$ sdn path ... --tp-src {found.group(1)} --tp-dst 80 (cut)\n{traced.stdout}")
    assert traced.returncode == 0, traced.stderr
    assert "conntrack zone 16384: tcp" in traced.stdout and \
        "mark 1 (cut by a security rule) (the packet is its original direction)" in \
        traced.stdout, traced.stdout
    assert len(before) >= 10, echoes
    assert during == [], echoes                     # the live connection was cut
    assert after, echoes                            # and lives again on the same socket
    print(f"\nobserved: {len(before)} echoes before the rule went, {len(during)} while it "
          f"was gone, {len(after)} after it came back (first at {after[0] - back_at:.2f} s)")


def test_a_trace_names_the_rule_that_let_a_packet_in_and_the_entry_that_dropped_one(lab):
    controller, network = start(lab, "reactive")
    h1, h2 = network["h1"], network["h2"]
    assert harness.ping(h1, h2)     # both learned: the trace follows known hosts

    def path(port):
        done = subprocess.run(
            [sys.executable, "-m", "sdn", "--url", f"http://127.0.0.1:{controller.rest_port}",
             "path", "s1", "2", h2.MAC(), h1.MAC(), "--proto", "tcp", "--nw-src", h2.IP(),
             "--nw-dst", h1.IP(), "--tp-src", "40000", "--tp-dst", str(port)],
            capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout
    allowed, refused = path(80), path(22)
    print(f"\n$ sdn path s1 2 ... --tp-dst 80\n{allowed}\n$ sdn path s1 2 ... --tp-dst 22\n"
          f"{refused}")
    assert "[security/rule 1]" in allowed and "delivered at: s1 port 1" in allowed, allowed
    assert "[security/rule 1]" not in refused and "[security/default]" in refused, refused
    assert "dropped" in refused and "delivered at: nowhere" in refused, refused
