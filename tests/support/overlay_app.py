"""The overlay app under test: two hypervisors, a fake OVSDB, bridges connecting (br-tun
as a fake switch of the tunnel pipeline)."""
from ryu.controller import ofp_event

from apps import overlay as overlay_app
from controller import config, rest
from tests.support.fakeswitch import FakeSwitch
from tests.support.l2_app import Features
from tests.support.vlan_app import port_desc


HVS = [{"name": f"hv{n}", "int_dpid": 0x1000 + n, "tun_dpid": 0x2000 + n,
        "underlay_ip": f"192.168.50.{n}", "ovsdb": f"unix:/run/hv{n}/db.sock"} for n in (1, 2)]

SECTION = {"hypervisors": HVS, "networks": [{"vni": 100, "name": "a"}, {"vni": 200}],
           "ports": [{"hypervisor": "hv1", "port": "hv1-eth2", "vni": 100},
                     {"hypervisor": "hv2", "port": "hv2-eth2", "vni": 100}]}


class FakeOvsdb:
    def __init__(self):
        self.meshes = []

    def bridge_of(self, dpid):
        return "br-tun"

    def set_tunnel_ports(self, bridge, wanted, owner):
        self.meshes.append((bridge, dict(wanted), owner))
        return sorted(wanted)


def make_app(monkeypatch, tmp_path, section=None, runtime=None):
    monkeypatch.setenv("SDN_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "load_file", lambda path=None: {"overlay": section or {}})
    wsgi = rest.WSGIApplication()
    app = overlay_app.Overlay(wsgi=wsgi, runtime=runtime)
    app.wsgi, app.spawn, app.fake_ovsdb = wsgi, lambda f, *a: f(*a), FakeOvsdb()
    app.ovsdb_of = lambda hv: app.fake_ovsdb
    return app


def connect(app, dpid, names, kind=None):
    """A bridge connecting; `kind` its pipeline, by default "tunnel" for the tun_dpid of
    one of HVS, else "main"."""
    if kind is None:
        kind = "tunnel" if any(hv["tun_dpid"] == dpid for hv in HVS) else "main"
    datapath = FakeSwitch(dpid, app, kind=kind)
    app._switch_connected(ofp_event.EventOFPSwitchFeatures(Features(datapath)))
    app._port_desc(port_desc(datapath, names, "br"))
    return datapath


def bring_up(app, number):
    tun = connect(app, 0x2000 + number, {1: "patch-int", 2: f"vx-hv{3 - number}"})
    int_ = connect(app, 0x1000 + number, {100: "patch-tun", 2: f"hv{number}-eth2",
                                          3: f"hv{number}-eth3"})
    return int_, tun
