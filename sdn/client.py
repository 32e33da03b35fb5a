"""The controller's REST API over HTTP: standard library only (urllib), so the CLI
starts fast and needs neither Ryu nor eventlet."""
import json
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiFailure(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class Client:
    def __init__(self, url, token=None, timeout=10.0):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _decode(response.read(), response.headers.get_content_type())
        except urllib.error.HTTPError as err:
            reply = _decode(err.read(), err.headers.get_content_type())
            message = reply.get("error") if isinstance(reply, dict) else None
            raise ApiFailure(err.code, message or f"HTTP {err.code}") from None


def _decode(raw, content_type):
    if content_type == "application/json":
        return json.loads(raw or b"null")
    return raw.decode(errors="replace")
