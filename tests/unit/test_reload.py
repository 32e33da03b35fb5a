"""Config reload (controller/reload.py) with the VLAN app: a bad file changes nothing and
says why; a good one is applied with only what differs sent to the switch."""
import json

import pytest
from ryu.ofproto import ofproto_v1_3 as ofp

from controller import config
from tests.support.l2_app import call, flow_mods
from tests.support.vlan_app import SECTION, bring_up, make_vlan_app


@pytest.fixture
def app(monkeypatch, tmp_path):
    return make_vlan_app(monkeypatch, tmp_path, SECTION)


def use_file(monkeypatch, data):
    def load(path=None):
        if isinstance(data, Exception):
            raise data
        return data
    monkeypatch.setattr(config, "load_file", load)


@pytest.mark.parametrize("bad, message", [
    (config.ConfigError("config file x is not valid YAML: oops"), "not valid YAML"),
    ({"vlan": {"ports": [{"switch": 1, "port": 1, "tag": 5000}]}}, "vlan: "),
    ({"vlan": {"portz": []}}, "unknown key(s) portz"),
    ({"vlan": SECTION, "api": {"token": "short"}}, "api: "),
])
def test_a_bad_file_changes_nothing_and_is_reported(app, monkeypatch, bad, message):
    datapath = bring_up(app)
    settings, sent = app.settings, len(datapath.sent)
    use_file(monkeypatch, bad)
    status, body, _ = call(app, "POST", "/v1/config/reload")
    assert status == 400 and message in body["error"] and "running config stays" in body["error"]
    assert app.settings is settings and len(datapath.sent) == sent
    status, body, _ = call(app, "GET", "/v1/config")
    assert status == 200 and body["ok"] is False and message in body["last_error"]


def test_a_good_file_is_applied_with_only_the_difference_sent(app, monkeypatch):
    datapath = bring_up(app)
    changed = json.loads(json.dumps(SECTION))
    changed["ports"][0]["tag"] = 30                 # vm1: VLAN 10 -> 30
    use_file(monkeypatch, {"vlan": changed})
    datapath.sent.clear()
    status, body, _ = call(app, "POST", "/v1/config/reload")
    assert status == 200 and body["ok"] and body["reloads"] >= 1
    assert call(app, "GET", "/v1/switches/1/ports/1/vlan")[1]["tag"] == 30
    mods = flow_mods(datapath)
    assert mods and not any(m.command == ofp.OFPFC_DELETE and m.cookie_mask == 0 for m in mods)
    assert len(mods) < 20                            # a diff, not the whole plan again
