"""Overlay lab helpers for integration tests: starting it, waiting until programmed."""
from mininet_topos import harness
from mininet_topos.overlay_topo import OverlayLab


APPS = ("apps/overlay.py",)

PAIRS = ((1, 2), (1, 3), (2, 3))


def start(lab, tmp_path, hypervisors=3, l2_population=False, config=True, apps=APPS):
    def topo(controller):
        return OverlayLab(hypervisors=hypervisors, rundir=str(tmp_path / "hv"),
                          controller_port=controller.of_port)

    def app_config(topology):
        if not config:
            return {"overlay": {"l2_population": l2_population}}
        return topology.app_config(l2_population=l2_population)

    controller, network = lab(topo, app_config, apps=apps)
    if config:
        wait_programmed(controller)
    return controller, network


def wait_programmed(controller, timeout=30):
    def programmed():
        body = controller.rest("GET", "/v1/overlay")[1]
        return body["hypervisors"] and all(h["programmed"] and "problem" not in h
                                           for h in body["hypervisors"])
    assert harness.wait_until(programmed, timeout), controller.rest("GET", "/v1/overlay")


def vm(network, number, tenant):
    return network[f"vm{number}{tenant}"]
