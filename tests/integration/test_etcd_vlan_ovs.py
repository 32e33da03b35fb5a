"""ryu-manager with the learning and VLAN apps on `state.backend: etcd`, real Open vSwitch:
a REST change is in etcd (no state.db anywhere), survives a restart with an empty state
directory, and another node's write reaches the running controller through its watch."""
import time

import pytest

from controller import etcd_client
from controller.etcd_store import EtcdStateStore
from mininet_topos import harness
from mininet_topos.topos import VLAN_LAB_CONFIG, VlanLab
from tests.support import etcd_server

pytestmark = pytest.mark.integration
APPS = ("apps/l2_switch.py", "apps/vlan.py")
PATH = "/v1/switches/0000000000000001/ports/third_br/vlan"
DPID = "0000000000000001"


@pytest.fixture
def etcd(tmp_path):
    """Before `lab` in a test's arguments: killed after the controller stopped."""
    with etcd_server.running(tmp_path / "etcd-member") as server:
        yield server


def test_rest_changes_live_in_etcd_survive_a_restart_and_other_nodes_changes_arrive(
        etcd, lab, tmp_path):
    config = dict(VLAN_LAB_CONFIG, l2_switch={"mode": "reactive"},
                  state={"backend": "etcd", "etcd": {"endpoints": [etcd.url], "prefix": "/lab",
                                                     "cluster": "lab", "timeout_s": 2}})
    controller, network = lab(VlanLab(), config, apps=APPS)
    harness.wait_vlans_programmed(controller, network)
    started = time.monotonic()
    status, body = controller.rest("PUT", PATH, {"trunks": [103]})
    put_s = time.monotonic() - started
    assert status == 200 and body["trunks"] == [103], body
    stored = etcd.stored("/lab/state/vlan")     # answered 200: it is in etcd already
    assert list(stored) == [DPID] and list(stored[DPID].values()) == [{"trunks": [103]}]
    assert etcd.stored("/lab/meta") == {"cluster": "lab", "format": 1}
    assert not list(controller.log_dir.rglob("state.db"))

    controller.stop()
    controller.state_dir = tmp_path / "an-empty-state-dir"   # nothing local to fall back on
    controller.start()
    harness.wait_vlans_programmed(controller, network)
    assert controller.rest("GET", PATH)[1]["trunks"] == [103]

    other = EtcdStateStore("vlan", etcd_client.EtcdClient([etcd.url], 2.0), prefix="/lab",
                           cluster="lab", spawn=lambda run: None)   # another node
    document, revision = other.load()
    port = next(iter(document[DPID]))
    document[DPID][port] = {"trunks": [101]}
    started = time.monotonic()
    other.save(document, revision)
    assert harness.wait_until(lambda: controller.rest("GET", PATH)[1]["trunks"] == [101], 5,
                              step=0.005)
    heard_s = time.monotonic() - started
    assert "state changed by another writer" in controller.log_text()
    status, body = controller.rest("PUT", PATH, {"trunks": [102]})   # over what it heard
    assert status == 200, body
    assert etcd.stored("/lab/state/vlan")[DPID][port] == {"trunks": [102]}

    etcd.kill()   # a write now is a clear 500 within timeout_s, and changes nothing
    started = time.monotonic()
    status, body = controller.rest("PUT", PATH, {"trunks": [101, 103]})
    refused_s = time.monotonic() - started
    assert status == 500 and body["error"].startswith("etcd unreachable: no answer from "
                                                      f"{etcd.url} within 2 s"), body
    assert refused_s < 3.0
    assert controller.rest("GET", PATH)[1]["trunks"] == [102]
    print(f"observed: REST PUT answered in {put_s * 1e3:.1f} ms with the document in etcd; "
          f"restart with an empty state dir kept it; another node's save applied and seen on "
          f"REST within {heard_s * 1e3:.0f} ms; etcd killed: PUT -> 500 in {refused_s:.2f} s "
          f"({body['error']})")
