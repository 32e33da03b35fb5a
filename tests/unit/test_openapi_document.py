"""docs/openapi.yaml describes exactly the routes the apps and the runtime serve."""
import inspect

import yaml

from apps import bond, l2_switch, lb, overlay, qos, topology, vlan
from controller import runtime_api

REST_CLASSES = (l2_switch.L2Rest, vlan.VlanRest, qos.QosRest, lb.LbRest, overlay.OverlayRest,
                topology.TopologyRest, bond.BondRest, runtime_api.RuntimeRest)


def served():
    routes = set()
    for cls in REST_CLASSES:
        for _, method in inspect.getmembers(cls, inspect.isfunction):
            info = getattr(method, "routing_info", None)
            if info:
                routes |= {(info["path"], m.lower()) for m in info["methods"]}
    return routes


def test_every_route_is_documented_and_nothing_else():
    document = yaml.safe_load(runtime_api.OPENAPI.read_text())
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    assert served() == documented


def test_every_operation_documents_its_errors_as_json():
    document = yaml.safe_load(runtime_api.OPENAPI.read_text())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or path == "/v1/openapi.json":
                continue
            assert operation["responses"].get("default") == \
                {"$ref": "#/components/responses/Error"}, (path, method)
