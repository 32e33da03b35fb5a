"""Learning + VLAN + QoS together on real Open vSwitch (issue 16, 2b and 5): a QoS rule
that names its port keeps VLAN egress (same VLAN delivered untagged, other VLANs not
at all), and queue rules classify frames that leave a trunk or a native-VLAN port
tagged into the right HTB class."""
import re
import subprocess
import time

import pytest
from mininet.topo import Topo

from mininet_topos import harness
from mininet_topos.topos import DatapathAware

pytestmark = pytest.mark.integration
APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/qos.py")
HTB = {"max_rate": "100M", "queues": {"0": {"min_rate": "10M"}, "1": {"min_rate": "10M"}}}
PORTS = {2: 5001, 4: 5002, 5: 5003}   # the port each rule sends queue 1 to, by UDP port
CONFIG = {
    "l2_switch": {"mode": "datapath"},
    "vlan": {"ports": [{"switch": "s1", "port": "s1-eth1", "tag": 10},
                       {"switch": "s1", "port": "s1-eth2", "tag": 10},
                       {"switch": "s1", "port": "s1-eth3", "tag": 20},
                       {"switch": "s1", "port": "s1-eth4", "trunks": [10, 20]},
                       {"switch": "s1", "port": "s1-eth5", "tag": 10, "trunks": [20],
                        "native_mode": "native-untagged"}]},
    "qos": {"ports": [dict(HTB, switch="s1", port=f"s1-eth{p}") for p in PORTS],
            "rules": [{"switch": "s1", "id": p, "match": {"udp_dst": udp}, "queue": 1,
                       "port": f"s1-eth{p}"} for p, udp in PORTS.items()]},
}


class QosVlanLab(DatapathAware, Topo):
    """h1, h2 access VLAN 10; h3 access VLAN 20; h4 behind a trunk of 10 and 20; h5
    behind a native-untagged port (native 10, trunk 20). Hosts are 10.0.0.<n>."""

    def build(self):
        s1 = self.addSwitch("s1", dpid="%016x" % 1)
        for n in range(1, 6):
            self.addLink(self.addHost(f"h{n}", ip=f"10.0.0.{n}/24"), s1, port2=n)


SEND = ("python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        "[s.sendto(b'x' * 1000, ('{ip}', {port})) for _ in range({count})]\"")
RECEIVE = ("python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
           "s.bind(('0.0.0.0', {port})); s.settimeout(2); n = 0\n"
           "try:\n    while True: s.recv(2000); n += 1\nexcept socket.timeout: print(n)\"")


def send(network, sender, receiver, port, count=20):
    """Datagrams from `sender` to `receiver` (its MAC set statically: hosts of another
    VLAN cannot ARP for it); how many the receiver got."""
    src, dst = network[sender], network[receiver]
    src.cmd(f"ip neigh replace {dst.IP()} lladdr {dst.MAC()} dev {src.defaultIntf()}")
    listening = dst.popen(["sh", "-c", RECEIVE.format(port=port)])
    harness.wait_until(lambda: str(port) in dst.cmd("ss -uln"), 3)
    src.cmd(SEND.format(ip=dst.IP(), port=port, count=count))
    out, _ = listening.communicate(timeout=10)
    return int(out.decode().strip() or 0)


def class_bytes(device, classid):
    out = subprocess.run(["tc", "-s", "class", "show", "dev", device],
                                 capture_output=True, text=True, check=True).stdout
    found = re.search(rf"class htb {classid} .*?\n\s*Sent (\d+) bytes", out)
    return int(found.group(1)) if found else 0


def start(lab):
    controller, network = lab(QosVlanLab(), CONFIG, apps=APPS)
    harness.wait_vlans_programmed(controller, network)
    harness.wait_qos_ready(controller)
    return controller, network


def test_a_rule_with_a_port_keeps_vlan_egress(lab):
    _, network = start(lab)
    assert send(network, "h1", "h2", 5001) == 20      # same VLAN: untagged, all of them
    assert send(network, "h3", "h2", 5001) == 0       # VLAN 20 never reaches access 10
    assert send(network, "h1", "h5", 5003) == 20      # the native VLAN leaves untagged


def test_queue_rules_classify_frames_that_leave_tagged(lab):
    controller, network = start(lab)
    for device, sender, target, udp in (("s1-eth4", "h1", "h4", 5002),   # trunk, VLAN 10
                                        ("s1-eth5", "h3", "h5", 5003)):  # native port, VLAN 20
        before = class_bytes(device, "1:2"), class_bytes(device, "1:1")
        send(network, sender, target, udp, count=200)   # tagged: the host cannot read them
        queue1 = class_bytes(device, "1:2") - before[0]
        default = class_bytes(device, "1:1") - before[1]
        # a burst of 200 loses some on the way (the low-rate loss item); what arrives at
        # the device must be in queue 1's class, not the default one
        assert queue1 >= 20 * 1000 and default < queue1 // 10, (device, queue1, default)
    # a restarted controller finds its filters in place (the tagged ones too)
    controller.stop()
    controller.start()
    assert network.net.waitConnected(timeout=20)
    assert harness.wait_until(lambda: controller.rest("GET", "/v1/qos")[1], 20)
    time.sleep(5)   # two tc checks (check_interval 2 s): filters in place, none re-added
    switch = controller.rest("GET", "/v1/qos")[1][0]
    assert switch["tc_applied"] == 0, switch
