"""The REST API against its OpenAPI document (controller/openapi.yaml, served at
/v1/openapi.json): schemathesis sends generated valid and invalid requests to every
operation of every app, on a controller driving a real switch; no answer may be a
server error (5xx) or differ from the document (status, content type, body schema)."""
import collections
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mininet_topos.topos import QOS_LAB_CONFIG, QosLab

pytestmark = pytest.mark.integration
APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/qos.py", "apps/lb.py", "apps/overlay.py",
        "apps/topology.py", "apps/bond.py", "apps/security.py")
# a group with a rule and a bound port, so the security operations have something to read
SECURITY = {"groups": {"web": [{"direction": "ingress", "protocol": "tcp", "ports": 80}]},
            "ports": [{"switch": "s1", "port": "s1-eth1", "addresses": ["10.0.0.1"],
                       "groups": ["web"]}]}
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")


def test_every_operation_keeps_to_the_document_and_never_fails_on_the_server(lab, tmp_path):
    config = dict(QOS_LAB_CONFIG, overlay={"networks": [{"vni": 100}]}, security=SECURITY, lb={
        "subnets": ["192.168.100.0/24"],
        "vips": [{"vip": "192.168.100.50", "port": 80,
                  "backends": [{"ip": "192.168.100.200", "port": 8080}]}]})
    controller, network = lab(QosLab(), config, apps=APPS)
    base = f"http://127.0.0.1:{controller.rest_port}"
    status, document = controller.rest("GET", "/v1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [str(schemathesis), "run", f"{base}/v1/openapi.json", "--url", base,
         "--checks", CHECKS, "--max-examples", "30", "--seed", "1",
         "--request-timeout", "10", "--suppress-health-check", "all",
         "--no-color"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    (tmp_path / "schemathesis.txt").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    operations = sum(method != "parameters" for item in document["paths"].values()
                     for method in item)
    print(f"observed: {cases.group(1)} generated requests over {operations} operations, "
          f"{cases.group(2)} passed (no 5xx, no schema violation)")
    assert not controller.problems()


# Bodies no schema generator thinks of (schemathesis did not find the 2000-deep one).
ABUSIVE_BODIES = (b"[" * 2000 + b"]" * 2000, b'{"a":' * 2000 + b"1" + b"}" * 2000,
                  b'{"a": 1e999}', b'{"a": NaN}', b'{"a": ' + b"9" * 5000 + b"}",
                  json.dumps({"a": "x" * 100000}).encode(), b'{"a": "\xff"}', b'{"a": "\\ud800"}',
                  b"[" * 100000)
SAMPLE = {"dpid": "0000000000000001", "port": "1", "rule_id": "1", "vip_id": "1",
          "spread_id": "1", "ip": "192.168.100.200", "name": "h1", "vni": "100",
          "hypervisor": "hv1", "group": "web"}


def test_abusive_bodies_on_every_write_get_a_json_4xx_and_change_nothing(lab):
    config = dict(QOS_LAB_CONFIG, overlay={"networks": [{"vni": 100}]}, security=SECURITY)
    controller, _ = lab(QosLab(), config, apps=APPS)
    _, document = controller.rest("GET", "/v1/openapi.json")
    writes = [(method.upper(), re.sub(r"{(\w+)}", lambda m: SAMPLE[m.group(1)], path))
              for path, item in document["paths"].items() for method in item
              if method in ("post", "put", "patch") and "requestBody" in item[method]]
    reads = sorted(path for path, item in document["paths"].items()
                   if "get" in item and "{" not in path and not path.endswith((".svg", ".json")))
    before = {path: controller.rest("GET", path) for path in reads}
    answers = collections.Counter()
    for method, path in writes:
        for body in ABUSIVE_BODIES:
            status, answer = controller.rest(method, path, body)
            answers[status] += 1
            assert 400 <= status < 500 and isinstance(answer, dict), (method, path, status,
                                                                      answer)
            assert "Traceback" not in answer["error"], answer
    after = {path: controller.rest("GET", path) for path in reads}
    for path in reads:
        if path not in ("/v1/switches", "/v1/topology", "/v1/overlay", "/metrics"):  # counters
            assert after[path] == before[path], path
    print(f"observed: {sum(answers.values())} abusive bodies on {len(writes)} write "
          f"operations, answers {dict(sorted(answers.items()))}")
    assert not controller.problems()
