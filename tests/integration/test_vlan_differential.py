"""Differential test: the VLAN lab driven by our apps must deliver exactly what OVS's own
port VLANs (`tag`/`trunks` + NORMAL, no controller) deliver, frame for frame.

Each probe is a frame with its own source MAC, injected on one host interface (untagged,
priority-tagged: VID 0 with a PCP, or tagged with a PCP); tcpdump on all six interfaces
records which interface saw it with which VLAN tag and PCP. Broadcasts come first (they
also teach both switches the probe MACs), then unicasts to MACs learned in VLANs 101, 103
and 0.
"""
import re
import time

import pytest

from mininet_topos import harness
from mininet_topos.topos import VLAN_LAB_CONFIG, VlanLab

pytestmark = pytest.mark.integration
BCAST = "ff:ff:ff:ff:ff:ff"
# (VID, PCP) of each probe's 802.1Q header, None: untagged; VID 0: priority-tagged
TAGS = (None, (0, 0), (0, 3), (0, 7), (101, 0), (101, 5), (102, 0), (102, 2), (103, 0),
        (103, 6), (999, 0))
UNICAST_TAGS = (None, (0, 5), (101, 0), (101, 3), (103, 0))


def probe_mac(index):
    return "02:00:00:00:%02x:%02x" % (index // 256, index % 256)


def probes():
    """[(host, vlan, src, dst)]: broadcasts from every host with every tag, then unicasts."""
    hosts = [h[0] for h in VlanLab.HOSTS]
    plan = [(host, tag, BCAST) for host in hosts for tag in TAGS]
    learned = [probe_mac(hosts.index(host) * len(TAGS))   # their untagged broadcasts
               for host in ("vm100", "first", "second")]    # VLANs 101, 103, 0 (trunk)
    plan += [(host, tag, dst) for host in hosts for tag in UNICAST_TAGS for dst in learned]
    return [(host, tag, probe_mac(i), dst) for i, (host, tag, dst) in enumerate(plan)]


def tci(tag):
    return None if tag is None else tag[1] << 13 | tag[0]


def tags_received(lines):
    """(src MAC, (VID, PCP) or None) of each frame in tcpdump -e lines ("vlan 0, p 3")."""
    found = []
    for line in lines:
        macs = re.match(r"\S+ ([0-9a-f:]{17}) > [0-9a-f:]{17},", line)
        if macs:
            tag = re.search(r"\bvlan (\d+), p (\d+)", line)
            found.append((macs.group(1), tag and (int(tag.group(1)), int(tag.group(2)))))
    return found


def observe(network):
    """{(probe src MAC, interface): sorted (VID, PCP) tags seen} for the whole probe plan."""
    intfs = [(network[host], intf) for host, intf, _, _ in VlanLab.HOSTS]
    plan = probes()
    with harness.Capture(intfs, bpf="ether proto 0x88b5 or (vlan and ether proto 0x88b5)") as cap:
        for phase in ([p for p in plan if p[3] == BCAST], [p for p in plan if p[3] != BCAST]):
            for host in dict.fromkeys(p[0] for p in phase):  # one send per host, in order
                harness.send_frames(network[host], [
                    harness.ethernet_frame(src, dst, vlan=tci(tag))  # the TCI, PCP included
                    for h, tag, src, dst in phase if h == host])
            time.sleep(0.5)  # the broadcasts are learned (reactive: by the controller) first
    seen = {}
    for _, intf in intfs:
        for src, tag in tags_received(cap.lines[intf]):
            seen.setdefault((src, intf), []).append(tag)
    return {key: sorted(tags, key=lambda t: (-1, -1) if t is None else t)
            for key, tags in seen.items()}


# The lab as given, and a variant with native VLANs on the two trunks.
NATIVE_CONFIG = {"vlan": {"ports": VLAN_LAB_CONFIG["vlan"]["ports"][:4] + [
    {"switch": "br0", "port": "second_br", "tag": 103, "trunks": [101],
     "native_mode": "native-untagged"},
    {"switch": "br0", "port": "third_br", "tag": 102, "trunks": [101],
     "native_mode": "native-tagged"},
]}}
# Every port kind with empty trunks, and VLAN 0 on two trunks (second_br trunks everything).
VLAN0_CONFIG = {"vlan": {"ports": [
    {"switch": "br0", "port": "vm100_br", "tag": 101},
    {"switch": "br0", "port": "vm101_br", "tag": 102, "native_mode": "native-tagged"},
    {"switch": "br0", "port": "vm102_br", "tag": 103, "native_mode": "native-untagged"},
    {"switch": "br0", "port": "first_br", "tag": 103},
    {"switch": "br0", "port": "third_br", "trunks": [0, 101, 102]},
]}}
CONFIGS = {"lab": VLAN_LAB_CONFIG, "native": NATIVE_CONFIG, "vlan0": VLAN0_CONFIG}
# VIDs some interface must see (None: untagged), so a probe run that delivered nothing
# cannot pass (in "native", 103 is native-untagged on the only trunk that carries it;
# in "vlan0", VID 0 with a PCP from one VLAN-0 trunk to the other, and 999 from the
# trunk of everything to the native ports that trunk everything too)
TAGS_SEEN = {"lab": {None, 101, 102, 103}, "native": {None, 101, 102},
             "vlan0": {None, 0, 101, 102, 103, 999}}


_references = {}


def ovs_reference(name):
    """What OVS itself delivers for config `name` (measured once per test run)."""
    if name not in _references:
        with harness.Network(VlanLab(), controller=None) as network:
            harness.apply_ovs_port_vlans(network, CONFIGS[name])
            time.sleep(0.5)
            _references[name] = observe(network)
    return _references[name]


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("mode", ["reactive", "datapath"])
def test_same_frames_as_ovs_port_vlans(lab, config, mode):
    reference = ovs_reference(config)
    controller, network = lab(VlanLab(), dict(CONFIGS[config], l2_switch={"mode": mode}),
                              apps=("apps/l2_switch.py", "apps/vlan.py"))
    harness.wait_vlans_programmed(controller, network)
    ours = observe(network)
    # the probes really went somewhere: every interface saw some, tagged and untagged
    assert {intf for _, intf in reference} == {h[1] for h in VlanLab.HOSTS}
    tags = {tag for tags in reference.values() for tag in tags}
    assert {tag and tag[0] for tag in tags} == TAGS_SEEN[config]
    # priorities crossed the switch: 7 only from priority-tagged probes, 5 from VLAN 101's
    assert {tag[1] for tag in tags if tag} >= {5, 7}
    frames = sum(len(tags) for tags in ours.values())
    print(f"\nobserved: {config}/{mode}: {len(probes())} probes, "
          f"{len(set(reference) | set(ours))} (probe, interface) pairs, {frames} frames ours, "
          f"{sum(len(t) for t in reference.values())} OVS")
    differences = {key: (reference.get(key), ours.get(key))
                   for key in set(reference) | set(ours) if reference.get(key) != ours.get(key)}
    assert not differences, "(OVS NORMAL, ours) per (probe, interface):\n" + "\n".join(
        f"{k}: {v}" for k, v in sorted(differences.items()))
