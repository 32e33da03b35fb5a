"""REST base on Ryu's WSGI layer: JSON in and out, errors as JSON with the right
status, dpid parsing, 405 for a known path with the wrong method and a JSON 404
for unknown paths.

The API binds to 127.0.0.1 unless `--wsapi-host` says otherwise (Ryu's own
default is every address). The `api` config section can require a bearer token
(401 without it) and caps request bodies (413 above `max_body_bytes`).
"""
import functools
import hmac
import inspect
import json
import logging
from dataclasses import dataclass
from typing import Optional

from controller import config, jsonbody, ryu_compat
from flows import dpid

ryu_compat.install()  # no-op when the venv's .pth hook already did it

import webob  # noqa: E402
from ryu import cfg  # noqa: E402
from ryu.app.wsgi import ControllerBase, WSGIApplication, route  # noqa: E402,F401

cfg.CONF.set_default("wsapi_host", "127.0.0.1")

_NOT_FOUND_ROUTE = "json-not-found"
LOG = logging.getLogger(__name__)
INTERNAL_ERROR_MARK = "REST request failed inside the controller"  # tests grep logs for this


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(body, status=200, headers=None):
    response = webob.Response(status=status, content_type="application/json", charset="utf-8",
                              body=(json.dumps(body, indent=1, sort_keys=True) + "\n").encode())
    response.headers.update(headers or {})
    return response


def text_response(text: str, content_type: str):
    return webob.Response(content_type=content_type, charset="utf-8", body=text.encode())


def error_response(status, message, headers=None):
    return json_response({"error": message, "status": status}, status, headers)


@dataclass(frozen=True)
class ApiSettings:
    """The `api` config section, shared by every app's REST routes."""
    token: Optional[str] = None   # set: every request needs "Authorization: Bearer <token>"
    max_body_bytes: int = 1 << 20
    lab_reports: str = "reports"  # where the labs' reports are, for the web console

    def __post_init__(self):
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 16):
            raise ValueError("token must be a string of at least 16 characters")
        if isinstance(self.max_body_bytes, bool) or not isinstance(self.max_body_bytes, int) \
                or self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be a positive integer, not "
                             f"{self.max_body_bytes!r}")
        if not isinstance(self.lab_reports, str) or not self.lab_reports:
            raise ValueError(f"lab_reports must be a folder's path, not {self.lab_reports!r}")


def _refusal(settings: ApiSettings, req):
    """The error reply a request gets before its handler runs, or None."""
    if settings.token is not None:
        given = req.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {settings.token}".encode()):
            return error_response(401, "missing or wrong bearer token",
                                  headers={"WWW-Authenticate": "Bearer"})
    length = req.content_length
    if length is None and req.method in ("POST", "PUT", "PATCH"):  # chunked: read to see
        body = req.body_file_raw.read(settings.max_body_bytes + 1)
        length = len(body)
        if length <= settings.max_body_bytes:
            req.body = body  # put back for the handler
    if length is not None and length > settings.max_body_bytes:
        return error_response(413, f"request body over {settings.max_body_bytes} bytes")
    return None


def api(name, path, methods, requirements=None):
    """Like Ryu's `route`, plus: the handler returns plain data (sent as JSON) and
    raises ApiError for a JSON error reply; the `api` section's token and body limit
    are checked first."""
    def wrap(handler):
        @route(name, path, methods=methods, requirements=requirements)
        @functools.wraps(handler)
        def handle(self, req, **kwargs):
            refusal = _refusal(self.api_settings, req)
            if refusal is not None:
                return refusal
            try:
                result = handler(self, req, **kwargs)
            except ApiError as err:
                return error_response(err.status, err.message)
            if isinstance(result, webob.Response):
                return result
            return json_response(result)
        return handle
    return wrap


def _answer_500_as_json(ryu_call):
    """The one last-resort boundary between a client and the controller's code.

    eventlet's WSGI server runs with debug on, so an exception that escapes an app
    would reach the client as a plain-text traceback naming install paths. Whatever
    a handler did not turn into an ApiError is answered here: a JSON 500 that says
    nothing of the internals, and the traceback goes to the log. This is deliberately
    broad: it is the outermost frame of a request, not control flow."""
    def call(self, environ, start_response):
        try:
            return ryu_call.__get__(self, type(self))(environ, start_response)
        except Exception:  # noqa: BLE001 -- see the docstring
            LOG.exception("%s: %s %s", INTERNAL_ERROR_MARK, environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            response = error_response(500, "internal error; the controller's log has details")
            return response(environ, start_response)
    call.sdn_guard = True
    return call


if not getattr(WSGIApplication.__call__, "sdn_guard", False):
    WSGIApplication.__call__ = _answer_500_as_json(WSGIApplication.__call__)


format_dpid = dpid.format  # 16 hex digits, as every edge writes it (flows/dpid.py)


def parse_dpid(text: str) -> int:
    """A path parameter as a datapath id, in the spellings of flows/dpid.py; else 400."""
    try:
        return dpid.parse(text)
    except dpid.DpidError as err:
        raise ApiError(400, str(err)) from None


def resolve_switch(ref, names) -> int:
    """A switch reference (a path parameter or a body field) as a datapath id:
    `names.resolve` (controller/switch_names.py: a datapath id in the spellings of
    flows/dpid.py, or a connected bridge's name). 400 for a bad spelling, 404 for a
    name no connected switch has, 409 for one that names two switches."""
    try:
        return names.resolve(ref)
    except dpid.UnknownSwitchName as err:
        raise ApiError(404, str(err)) from None
    except dpid.AmbiguousSwitchName as err:
        raise ApiError(409, str(err)) from None
    except dpid.DpidError as err:
        raise ApiError(400, str(err)) from None


def parse_json_body(req):
    if not req.body:
        raise ApiError(400, "request body is empty; expected a JSON object")
    try:
        body = jsonbody.loads(req.body)
    except jsonbody.BodyError as err:
        raise ApiError(400, str(err)) from None
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object")
    return body


class AppController(ControllerBase):
    """A REST controller whose registered `data` is the Ryu app it serves."""
    api_settings = ApiSettings()  # replaced by register() from the config file

    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data


class _Fallback(ControllerBase):
    def method_not_allowed(self, req, allow, **_):
        return error_response(405, f"{req.method} not allowed on {req.path}; use {allow}",
                              headers={"Allow": allow})

    def not_found(self, req, **_):
        return error_response(404, f"no such resource: {req.path}")


def register(wsgi: WSGIApplication, controller_cls, data):
    """Register a ControllerBase with JSON 405/404 fallbacks.

    Each path gets a method-less route after its real ones (answering 405), and
    the catch-all 404 is moved to the end so it never shadows another app's
    routes registered later. A bad `api` config section stops the app. (The
    runtime's own routes come from controller/runtime.py: this module imports no
    module that builds on it.)
    """
    try:  # one `api` section for every app's routes (controller/reload.py replaces it)
        AppController.api_settings = config.section(ApiSettings, "api")
    except config.ConfigError as err:
        raise SystemExit(f"api: {err}") from None
    wsgi.register(controller_cls, data)
    allowed = {}
    for _, method in inspect.getmembers(controller_cls, inspect.isfunction):
        info = getattr(method, "routing_info", None)
        if info and info.get("methods"):
            key = (info["path"], tuple(sorted((info.get("requirements") or {}).items())))
            allowed.setdefault(key, set()).update(info["methods"])
    for (path, requirements), methods in sorted(allowed.items()):
        wsgi.mapper.connect(f"405:{path}", path, controller=_Fallback,
                            action="method_not_allowed", allow=", ".join(sorted(methods)),
                            requirements=dict(requirements))
    catch_all = [r for r in wsgi.mapper.matchlist if r.name == _NOT_FOUND_ROUTE]
    if not catch_all:
        # [\s\S]: a path with a newline in it (%0A) is no match for ".*", and Ryu's own
        # HTML 404 would answer it
        wsgi.mapper.connect(_NOT_FOUND_ROUTE, "/{anything:[\\s\\S]*}", controller=_Fallback,
                            action="not_found")
    else:
        wsgi.mapper.matchlist.remove(catch_all[0])
        wsgi.mapper.matchlist.append(catch_all[0])
