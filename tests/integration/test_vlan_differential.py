"""Differential test: the VLAN lab driven by our apps must deliver exactly what OVS's own
port VLANs (`tag`/`trunks` + NORMAL, no controller) deliver, frame for frame.

Each probe is a frame with its own source MAC, injected on one host interface (untagged or
tagged); tcpdump on all six interfaces records which interface saw it with which VLAN tag.
Broadcasts come first (they also teach both switches the probe MACs), then unicasts to
MACs learned in VLANs 101 and 103.
"""
import time

import pytest

from mininet_topos import harness
from mininet_topos.topos import VLAN_LAB_CONFIG, VlanLab

pytestmark = pytest.mark.integration
BCAST = "ff:ff:ff:ff:ff:ff"
TAGS = (None, 101, 102, 103, 999)


def probe_mac(index):
    return "02:00:00:00:%02x:%02x" % (index // 256, index % 256)


def probes():
    """[(host, vlan, src, dst)]: broadcasts from every host with every tag, then unicasts."""
    hosts = [h[0] for h in VlanLab.HOSTS]
    plan = [(host, tag, BCAST) for host in hosts for tag in TAGS]
    learned_in_101 = probe_mac(hosts.index("vm100") * len(TAGS))   # vm100, untagged
    learned_in_103 = probe_mac(hosts.index("first") * len(TAGS))   # first, untagged
    plan += [(host, tag, dst) for host in hosts for tag in (None, 101, 103)
             for dst in (learned_in_101, learned_in_103)]
    return [(host, tag, probe_mac(i), dst) for i, (host, tag, dst) in enumerate(plan)]


def observe(network):
    """{(probe src MAC, interface): sorted VLAN tags seen} for the whole probe plan."""
    intfs = [(network[host], intf) for host, intf, _, _ in VlanLab.HOSTS]
    plan = probes()
    with harness.Capture(intfs, bpf="ether proto 0x88b5 or (vlan and ether proto 0x88b5)") as cap:
        for phase in ([p for p in plan if p[3] == BCAST], [p for p in plan if p[3] != BCAST]):
            for host in dict.fromkeys(p[0] for p in phase):  # one send per host, in order
                harness.send_frames(network[host], [harness.ethernet_frame(src, dst, vlan=tag)
                                                    for h, tag, src, dst in phase if h == host])
            time.sleep(0.5)  # the broadcasts are learned (reactive: by the controller) first
    seen = {}
    for _, intf in intfs:
        for src, _, vlan in cap.frames(intf):
            seen.setdefault((src, intf), []).append(vlan)
    return {key: sorted(tags, key=lambda t: -1 if t is None else t)
            for key, tags in seen.items()}


# The lab as given, and a variant with native VLANs on the two trunks.
NATIVE_CONFIG = {"vlan": {"ports": VLAN_LAB_CONFIG["vlan"]["ports"][:4] + [
    {"switch": "br0", "port": "second_br", "tag": 103, "trunks": [101],
     "native_mode": "native-untagged"},
    {"switch": "br0", "port": "third_br", "tag": 102, "trunks": [101],
     "native_mode": "native-tagged"},
]}}
CONFIGS = {"lab": VLAN_LAB_CONFIG, "native": NATIVE_CONFIG}
# tags some interface must see, so a probe run that delivered nothing cannot pass
# (in the variant, 103 is native-untagged on the only trunk that carries it)
TAGS_SEEN = {"lab": {None, 101, 102, 103}, "native": {None, 101, 102}}


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
    assert {tag for tags in reference.values() for tag in tags} == TAGS_SEEN[config]
    differences = {key: (reference.get(key), ours.get(key))
                   for key in set(reference) | set(ours) if reference.get(key) != ours.get(key)}
    assert not differences, "(OVS NORMAL, ours) per (probe, interface):\n" + "\n".join(
        f"{k}: {v}" for k, v in sorted(differences.items()))
