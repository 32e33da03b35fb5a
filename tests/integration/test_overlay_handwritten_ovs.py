"""The overlay bench's peer on real Open vSwitch: the course's hand-written tunnel
flows (mininet_topos/overlay_handwritten.py) on the overlay lab's three hypervisors,
no controller, must forward, or bench/overlay.py would compare ours with nothing."""
import pytest

from mininet_topos import harness, overlay_handwritten
from tests.support.overlay_lab import PAIRS, vm

pytestmark = pytest.mark.integration


def test_hand_written_flows_carry_both_tenants_across_hypervisors(tmp_path):
    topo = overlay_handwritten.handwritten_lab(str(tmp_path / "hv"), hypervisors=3)
    with harness.Network(topo, controller=None) as network:
        overlay_handwritten.program(network, 3)
        for n in (1, 2, 3):   # really no controller: what forwards is the flows above
            for bridge in ("br-int", "br-tun"):
                assert network[f"hv{n}"].vsctl("get-controller", bridge).strip() == ""
        # OVS drops a tunnel's first packet while it resolves the remote VTEP's MAC
        for tenant in "ab":
            for a, b in PAIRS:
                assert harness.wait_until(lambda: harness.ping(
                    vm(network, a, tenant), vm(network, b, tenant), count=2, timeout=2), 10), \
                    f"vm{a}{tenant} -> vm{b}{tenant}"
        learned = [flow for flow in network["hv1"].flows("br-tun", table=20)
                   if flow.priority == 1]
        # table 10's learn(): hv1 now knows vm2a and vm3a (VNI 100), vm2b and vm3b (200)
        tunnel_ids = [flow.loads().get("NXM_NX_TUN_ID") for flow in learned]
        assert (tunnel_ids.count(100), tunnel_ids.count(200)) == (2, 2), learned
        # the tenants share addresses: a tenant-b VM answers for 10.0.0.2 in VNI 200 only
        arp = vm(network, 1, "a").cmd("ip neigh show 10.0.0.2")
        assert vm(network, 2, "a").MAC() in arp and vm(network, 2, "b").MAC() not in arp
