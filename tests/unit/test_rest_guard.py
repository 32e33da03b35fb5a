"""The REST guard every app's routes share: bearer token and body size (WSGI level)."""
import json

import pytest
import webob

from apps import vlan as vlan_app
from controller import config, rest
from tests.unit.test_vlan_app_rest import bring_up
from tests.fakeswitch import run_inline

TOKEN = "s3cret-token-0123456789"
PATH = "/v1/switches/1/ports/1/vlan"


def make_app(monkeypatch, tmp_path, api):
    monkeypatch.setenv("SDN_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "load_file", lambda path=None: {"api": api})
    run_inline(monkeypatch, vlan_app.hub)
    wsgi = rest.WSGIApplication()
    app = vlan_app.Vlan(wsgi=wsgi)
    app.wsgi = wsgi
    monkeypatch.setattr(app, "send_event_to_observers", lambda ev: None)
    bring_up(app)
    return app


def request(app, method, path, body=None, token=None, chunked=False):
    req = webob.Request.blank(path, method=method)
    if token:
        req.headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        req.body = body
        if chunked:
            del req.headers["Content-Length"]
    resp = req.get_response(app.wsgi)
    return resp.status_int, json.loads(resp.body), resp


def test_without_a_token_setting_anyone_on_localhost_may_call(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, {})
    assert request(app, "GET", PATH)[0] == 200


def test_a_token_is_required_when_set(monkeypatch, tmp_path):
    app = make_app(monkeypatch, tmp_path, {"token": TOKEN})
    status, body, resp = request(app, "GET", PATH)
    assert status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    assert request(app, "GET", PATH, token="wrong-token-0123456789")[0] == 401
    assert request(app, "GET", PATH, token=TOKEN)[0] == 200
    status, _, _ = request(app, "PUT", PATH, b'{"tag": 7}')  # no token: nothing changes
    assert status == 401 and request(app, "GET", PATH, token=TOKEN)[1]["tag"] is None


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_the_limit_are_refused_before_anything_changes(monkeypatch, tmp_path,
                                                                   chunked):
    app = make_app(monkeypatch, tmp_path, {"max_body_bytes": 64})
    big = json.dumps({"tag": 7, "x": "y" * 100}).encode()
    status, body, _ = request(app, "PUT", PATH, big, chunked=chunked)
    assert status == 413 and "64 bytes" in body["error"]
    assert request(app, "GET", PATH)[1]["tag"] is None
    status, body, _ = request(app, "PUT", PATH, b'{"tag": 7}', chunked=chunked)
    assert status == 200 and body["tag"] == 7


@pytest.mark.parametrize("api, message", [({"token": "short"}, "at least 16"),
                                          ({"max_body_bytes": 0}, "positive"),
                                          ({"tokens": TOKEN}, "unknown key")])
def test_a_bad_api_section_stops_the_app(monkeypatch, tmp_path, api, message):
    with pytest.raises(SystemExit, match=message):
        make_app(monkeypatch, tmp_path, api)
