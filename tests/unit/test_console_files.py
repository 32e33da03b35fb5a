"""The web console's files (controller/console/), served by the runtime's routes next
to the API: the page and its two scripts, without the token (they hold no data), and
nothing else from that folder. Its behaviour in a browser is
tests/integration/test_console_browser.py."""
import json
import re

import pytest
import webob

from controller import rest, runtime_api
from tests.support.vlan_app import bring_up, make_vlan_app

TOKEN = "s3cret-token-0123456789"


def bring_up_app(monkeypatch, tmp_path, api):
    app = make_vlan_app(monkeypatch, tmp_path, api=api)
    bring_up(app)
    return app


def get(app, path, token=None):
    req = webob.Request.blank(path)
    if token:
        req.headers["Authorization"] = f"Bearer {token}"
    return req.get_response(app.wsgi)


def test_the_page_and_its_scripts_are_served_without_the_token(monkeypatch, tmp_path):
    app = bring_up_app(monkeypatch, tmp_path, {"token": TOKEN})
    page = get(app, "/console")
    assert page.status_int == 200 and page.content_type == "text/html"
    assert b'<script src="/console/console.js">' in page.body
    for name, kind in (("console.js", "application/javascript"), ("console.css", "text/css")):
        served = get(app, f"/console/{name}")
        assert (served.status_int, served.content_type) == (200, kind)
        assert served.body == (runtime_api.CONSOLE / name).read_bytes()
    assert get(app, "/").status_int == 302 and get(app, "/").location.endswith("/console")
    assert get(app, "/v1/vlans").status_int == 401          # the data still wants it
    assert get(app, "/v1/vlans", TOKEN).status_int == 200


def test_nothing_else_is_served_from_the_console_folder(monkeypatch, tmp_path):
    app = bring_up_app(monkeypatch, tmp_path, {})
    for path in ("/console/../runtime_api.py", "/console/%2e%2e/rest.py", "/console/x.js",
                 "/console/index.htm", "/console/console.jsx", "/console/"):
        answer = get(app, path)
        assert answer.status_int == 404 and answer.content_type == "application/json", path


def test_the_page_refers_only_to_files_that_are_served_and_routes_that_exist():
    page = (runtime_api.CONSOLE / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="(/console/[^"]+)"', page):
        assert ref.rsplit("/", 1)[1] in runtime_api.CONSOLE_FILES, ref
    script = (runtime_api.CONSOLE / "console.js").read_text()
    import yaml
    paths = set(yaml.safe_load(runtime_api.OPENAPI.read_text())["paths"])
    # plain routes ("/v1/vlans") and templated ones (`/v1/switches/${...}/flows`, with
    # each ${...} a path parameter): every one must be a documented path
    plain = set(re.findall(r'"(/v1/[a-z/._]+)"', script))
    joined = re.sub(r"`\s*\+\s*`", "", script)       # `a` +\n `b`: one template
    templated = {re.sub(r"\$\{[^}]*\}", "{}", t) for t in re.findall(r"`(/v1/[^`]+)`", joined)}
    documented = {re.sub(r"\{\w+\}", "{}", p) for p in paths}
    assert plain and plain <= paths, plain - paths
    assert templated and templated <= documented, templated - documented


REPORT = """# The VLAN lab

| check | expected | observed | result |
|---|---|---|---|
| h1 -> h3 | reply | reply | PASS |
| h1 -> h2 | no reply | reply | FAIL |

1 of 2 checks passed; the run took 12 s.
"""


def test_the_labs_reports_are_listed_and_read_from_the_configured_folder(monkeypatch,
                                                                           tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "vlan_lab.md").write_text(REPORT)
    (folder / "qos_lab.md").write_text(REPORT.replace("1 of 2", "2 of 2").replace("VLAN", "QoS"))
    (folder / "Not A Slug.md").write_text(REPORT)        # not a lab's name: left out
    app = bring_up_app(monkeypatch, tmp_path / "state", {"lab_reports": str(folder)})
    listed = json.loads(get(app, "/v1/labs/reports").body)
    assert {r["slug"]: (r["title"], r["passed"], r["checks"], r["ok"]) for r in listed} == {
        "vlan_lab": ("The VLAN lab", 1, 2, False), "qos_lab": ("The QoS lab", 2, 2, True)}
    one = json.loads(get(app, "/v1/labs/reports/vlan_lab").body)
    assert one["markdown"] == REPORT and one["title"] == "The VLAN lab"
    for slug in ("nope", "..%2fstate", "..", "Not%20A%20Slug", "vlan_lab.md"):
        answer = get(app, f"/v1/labs/reports/{slug}")
        assert answer.status_int == 404 and json.loads(answer.body)["status"] == 404, slug


def test_no_reports_folder_is_an_empty_list_and_a_bad_setting_is_refused(monkeypatch, tmp_path):
    app = bring_up_app(monkeypatch, tmp_path, {"lab_reports": str(tmp_path / "none")})
    assert json.loads(get(app, "/v1/labs/reports").body) == []
    with pytest.raises(ValueError, match="lab_reports must be a folder"):
        rest.ApiSettings(lab_reports="")


def post(app, path, body):
    req = webob.Request.blank(path, method="POST", body=json.dumps(body).encode(),
                              content_type="application/json")
    return req.get_response(app.wsgi)


def test_a_trace_is_asked_by_post_and_bad_ones_get_the_api_error(monkeypatch, tmp_path):
    """The route's own answers (the trace itself: tests/unit/test_trace.py, on OVS:
    tests/integration/test_trace_ovs.py)."""
    from controller import trace
    app = bring_up_app(monkeypatch, tmp_path, {})
    dpif = "netdev@ovs-netdev: hit:0 missed:0\n  br0:\n    vm1 1/2: (system)\n"
    asked = []

    def appctl(args):
        asked.append(args)
        if args == ["dpif/show"]:
            return 0, dpif
        return 0, "Datapath actions: drop\n"
    monkeypatch.setattr(trace, "run_appctl", appctl)
    good = {"switch": "1", "in_port": "vm1", "dl_src": "00:00:00:00:00:01",
            "dl_dst": "ff:ff:ff:ff:ff:ff"}
    datapath = app.switches[1].datapath
    app.runtime.names.connected(datapath)
    app.runtime.names.named(datapath, "br0")
    answer = post(app, "/v1/trace", good)
    assert answer.status_int == 200, answer.body
    hops = json.loads(answer.body)["hops"]
    assert [(h["name"], h["in_port"], h["dropped"]) for h in hops] == [("br0", 1, True)]
    assert asked[-1] == ["ofproto/trace", "br0",
                         "in_port=1,dl_src=00:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff"]
    for body, status in ((dict(good, switch="2"), 404), (dict(good, switch="nope"), 404),
                         (dict(good, in_port=7), 404), (dict(good, dl_src="x"), 400),
                         ([], 400), (dict(good, switch="0x"), 400)):
        answer = post(app, "/v1/trace", body)
        assert answer.status_int == status, (body, answer.body)
        assert "error" in json.loads(answer.body) and b"Traceback" not in answer.body
