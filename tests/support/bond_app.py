"""The bond app under test: a bond body and port names, built and brought up."""
from ryu.controller import ofp_event

from apps import bond as bond_app
from controller import config, ovsdb, rest
from tests.support.fakeswitch import FakeSwitch
from tests.support.l2_app import Features
from tests.support.vlan_app import port_desc


NAMES = {1: "s1-eth1", 2: "s1-eth2", 3: "s1-eth3", 4: "s1-eth4"}

BODY = {"members": ["s1-eth3", "s1-eth4"], "mode": "active-backup", "primary": "s1-eth3"}


class FakeOvsdb:
    def __init__(self):
        self.bonds, self.calls, self.refuse = {}, [], False

    def set_bond(self, bridge, name, members, mode, lacp, other_config, owner):
        self.calls.append(("set", bridge, name, tuple(members), mode, lacp))
        if self.refuse:
            raise ovsdb.OvsdbError("constraint violation")
        self.bonds[name] = {"owner": owner, "members": sorted(members), "bond_mode": mode,
                            "lacp": lacp, "other_config": dict(other_config)}

    def delete_bond(self, bridge, name, owner):
        self.calls.append(("delete", bridge, name))
        self.bonds.pop(name, None)

    def read_bond(self, name):
        return self.bonds.get(name)

    def owned_ports(self, owner):
        return sorted(self.bonds)

    def bridge_of(self, dpid):
        return f"s{dpid}"


def make_app(monkeypatch, tmp_path, section=None):
    monkeypatch.setenv("SDN_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "load_file", lambda path=None: {"bond": section or {}})
    wsgi = rest.WSGIApplication()
    app = bond_app.Bond(wsgi=wsgi)
    app.wsgi, app.ovsdb, app.spawn = wsgi, FakeOvsdb(), lambda run, *a: run(*a)
    return app


def bring_up(app, dpid=1):
    switch = FakeSwitch(dpid, app)
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(switch)))
    app._port_desc(port_desc(switch, NAMES, "s1"))
    return switch
