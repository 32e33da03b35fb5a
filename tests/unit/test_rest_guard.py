"""The REST guard every app's routes share: bearer token and body size (WSGI level)."""
import json

import pytest
import webob

from controller import rest
from tests.support.vlan_app import bring_up, make_vlan_app

TOKEN = "s3cret-token-0123456789"
PATH = "/v1/switches/1/ports/1/vlan"


def make_app(monkeypatch, tmp_path, api):
    app = make_vlan_app(monkeypatch, tmp_path, api=api)
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


ABUSIVE_BODIES = {
    "nested 2000 deep (arrays)": b"[" * 2000 + b"]" * 2000,
    "nested 2000 deep (objects)": b'{"tag":' * 2000 + b"7" + b"}" * 2000,
    "nested 33 deep": b'{"tag":' * 33 + b"7" + b"}" * 33,
    "a long string": json.dumps({"tag": "x" * 5000}).encode(),
    "a long key": json.dumps({"k" * 5000: 7}).encode(),
    "many members": json.dumps({f"k{i}": i for i in range(10001)}).encode(),
    "a 5000-digit integer": b'{"tag": ' + b"9" * 5000 + b"}",
    "an integer over 64 bits": b'{"tag": 18446744073709551616}',
    "an infinite float": b'{"tag": 1e999}',
    "NaN": b'{"tag": NaN}',
    "-Infinity": b'{"tag": -Infinity}',
    "not UTF-8": b'{"tag": "\xff\xfe"}',
    "a lone surrogate escape": b'{"tag": "\\ud800"}',
    "a lone surrogate in a key": b'{"\\udc00": 7}',
    "truncated": b'{"tag": ',
    "an array, not an object": b"[7]",
    "a bare number": b"7",
}


@pytest.mark.parametrize("body", ABUSIVE_BODIES.values(), ids=ABUSIVE_BODIES.keys())
def test_abusive_bodies_get_a_json_400_and_change_nothing(monkeypatch, tmp_path, body):
    app = make_app(monkeypatch, tmp_path, {"max_body_bytes": 1 << 20})
    status, answer, resp = request(app, "PUT", PATH, body)
    assert status == 400, answer
    assert resp.content_type == "application/json" and answer["status"] == 400
    assert "Traceback" not in answer["error"] and "/site-packages/" not in answer["error"]
    assert request(app, "GET", PATH)[1]["tag"] is None
    assert request(app, "PUT", PATH, b'{"tag": 7}')[1]["tag"] == 7  # still serving


def test_a_handler_that_fails_answers_500_as_json_and_logs_the_traceback(monkeypatch, tmp_path,
                                                                        caplog):
    app = make_app(monkeypatch, tmp_path, {})

    def broken(*_args, **_kwargs):
        raise KeyError("an internal detail")
    monkeypatch.setattr(app, "change", broken)
    status, answer, resp = request(app, "PUT", PATH, b'{"tag": 7}')
    assert status == 500 and resp.content_type == "application/json"
    assert "internal detail" not in resp.text and "Traceback" not in resp.text
    assert rest.INTERNAL_ERROR_MARK in caplog.text and "an internal detail" in caplog.text
    assert request(app, "GET", PATH)[0] == 200  # the next request is served
