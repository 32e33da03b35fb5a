"""Our thin wrapper over etcd3gw, the client of etcd's HTTP/JSON gateway (/v3/...).

Why etcd3gw: it is plain HTTP over `requests`, so under eventlet's monkey patching it
yields like any socket (measured: about 1 ms a put, a watch event in about 3 ms, green
threads kept running); python-etcd3 (gRPC) froze the whole process on a watch.

What we add to it:
- a list of endpoints used in rotation: a request goes to the member that last
  answered, and on a connection failure, a timeout or an "unavailable" answer (no
  leader yet) to the next, round after round, until `timeout_s` is up;
- one clear error when no member answered in time (`StateError` naming every endpoint
  and what each said), and a plain one when etcd refused a request;
- a check that every endpoint answers for the same etcd cluster (its cluster_id);
- watch streams (etcd3gw's own Watcher drops the "compacted" answer, which we need).
"""
import base64
import json
import logging
import re
import time

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw import exceptions as gateway_errors

from controller.state import StateError

LOG = logging.getLogger(__name__)
RETRY_PAUSE_S = 0.1   # between two rounds over every endpoint
# etcd3gw's errors after which another member (or the same one, a moment later) may do:
# no connection, no answer in time, 503 (no leader, member stopping), 500
_TRY_ANOTHER = (gateway_errors.ConnectionFailedError, gateway_errors.ConnectionTimeoutError,
                gateway_errors.InternalServerError)
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+|\[SSL: [A-Z0-9_]+\] [^'\"(]+")


def encode(text: str) -> str:
    """The gateway's form of a key or value: base64 of its UTF-8 bytes."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode(value: str) -> str:
    return base64.b64decode(value).decode("utf-8")


def prefix_end(prefix: str) -> str:
    """The range_end that makes a range (or watch) of every key starting with `prefix`
    (its last character + 1)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def prefix_range(prefix: str) -> dict:
    """The kv/range request body for every key starting with `prefix`."""
    return {"key": encode(prefix), "range_end": encode(prefix_end(prefix))}


def json_object(kv):
    """The JSON object a key's value holds, or None when it holds something else."""
    try:
        value = json.loads(decode(kv.get("value", "")))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def watch_forever(watch_once, closed, sleep, said, what, pause_s=0.1, longest_s=2.0):
    """Run `watch_once` (one watch stream, to its end) again and again until `closed()`:
    a stream that ended is opened again after `pause_s` (one that ends at once cannot
    spin); a StateError goes to `said(err, failures)` and is retried after a pause that
    doubles up to `longest_s`; `said(None, 0)` once a stream ran. Any other error is a
    bug: its traceback is logged as `what`'s, and the watch goes on."""
    failures = 0
    while not closed():
        try:
            watch_once()
            failures = 0
            said(None, 0)
            sleep(pause_s)
        except StateError as err:
            failures += 1
            said(err, failures)
            sleep(min(longest_s, 0.1 * 2 ** failures))
        except Exception:  # noqa: BLE001 -- a bug shows, and the watch goes on
            LOG.exception("%s: the watch on etcd failed", what)
            sleep(longest_s)


def cause(err) -> str:
    """What went wrong, short: the errno text or etcd's own message, not urllib3's."""
    text = getattr(err, "detail_text", None) or \
        " ".join(str(part) for part in getattr(err, "args", ()) if part) or repr(err)
    try:   # etcd's answer to a request it refused: {"error": ..., "message": ..., "code"}
        body = json.loads(text)
        return str(body.get("message") or body.get("error") or text)[:200]
    except (ValueError, AttributeError):
        pass
    found = _ERRNO.search(text)
    if found:
        return found.group(0).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text[:200]


def gateway_client(url, timeout, ca_file=None, cert_file=None, key_file=None):
    """An etcd3gw client of one endpoint ("http(s)://host:port")."""
    scheme, _, hostport = url.partition("://")
    host, _, port = hostport.rpartition(":")
    client = Etcd3Client(host=host.strip("[]"), port=int(port), protocol=scheme,
                         timeout=timeout, ca_cert=ca_file, cert_key=key_file,
                         cert_cert=cert_file)
    if ca_file:   # requests lets REQUESTS_CA_BUNDLE (set on Debian) win over session.verify
        client.session.trust_env = False
    return client


class EtcdClient:
    """One etcd cluster reached through any of `endpoints` ("http://host:port")."""

    def __init__(self, endpoints, timeout_s=5.0, make_client=gateway_client):
        self.endpoints = list(endpoints)
        self.timeout_s = timeout_s
        self._make = make_client     # (url, timeout) -> an etcd3gw.Etcd3Client
        self._clients = {}
        self._current = 0            # the endpoint that answered last
        self.cluster_id = None       # etcd's cluster id, as the first answer said
        self._cluster_url = None

    @property
    def current(self) -> str:
        return self.endpoints[self._current]

    def _client(self, url):
        if url not in self._clients:
            self._clients[url] = self._make(url, self.timeout_s)
        return self._clients[url]

    def _attempts(self):
        """(url, attempt timeout) in rotation until timeout_s is up: no endpoint that does
        not answer takes more than its share, so the others still get their turn."""
        deadline = time.monotonic() + self.timeout_s
        share = self.timeout_s / len(self.endpoints)
        tried = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if tried and tried % len(self.endpoints) == 0:   # a whole round failed
                time.sleep(min(RETRY_PAUSE_S, remaining))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
            yield self.current, max(0.01, min(share, remaining))
            tried += 1
            self._current = (self._current + 1) % len(self.endpoints)

    def _unreachable(self, causes):
        said = "; ".join(f"{url}: {why}" for url, why in causes.items()) or "no attempt"
        return StateError(f"etcd unreachable: no answer from {', '.join(self.endpoints)} "
                          f"within {self.timeout_s:g} s ({said})")

    def call(self, path, body):
        """etcd's answer (a dict) to POST /v3/`path` with `body`, and whether an earlier
        attempt failed in a way that may have reached etcd (a write may then have been
        applied already). StateError when no endpoint answered within timeout_s, or
        etcd refused the request."""
        causes, retried = {}, False
        for url, timeout in self._attempts():
            client = self._client(url)
            client.timeout = timeout   # read at the request (no green switch before)
            try:
                answer = client.post(client.get_url(path), json=body)
            except _TRY_ANOTHER as err:
                causes[url], retried = cause(err), True
                continue
            except gateway_errors.Etcd3Exception as err:
                raise StateError(f"etcd at {url} refused {path}: {cause(err)}") from None
            except (requests.RequestException, ValueError) as err:
                causes[url], retried = cause(err), True
                continue
            self.check_cluster(url, answer)
            return answer, retried
        raise self._unreachable(causes)

    def check_cluster(self, url, answer):
        """Every endpoint must be a member of the one etcd cluster: a list that mixes
        two clusters would read one's data and write the other's."""
        found = (answer.get("header") or {}).get("cluster_id") if isinstance(answer, dict) \
            else None
        if found is None:
            return
        if self.cluster_id is None:
            self.cluster_id, self._cluster_url = found, url
        elif found != self.cluster_id:
            raise StateError(f"etcd endpoint {url} is a member of another etcd cluster "
                             f"(id {found}) than {self._cluster_url} (id {self.cluster_id}); "
                             f"list the members of one cluster in state.etcd.endpoints")

    def watch(self, key, start_revision, idle_s, range_end=None):
        """A WatchStream of `key`'s changes (every key in [key, range_end) with one) from
        `start_revision` on, from the first endpoint (in rotation) that takes it;
        StateError when none does in time."""
        create = {"create_request": {"key": encode(key), "start_revision": start_revision}}
        if range_end is not None:
            create["create_request"]["range_end"] = encode(range_end)
        causes = {}
        for url, timeout in self._attempts():
            client = self._make(url, timeout)   # its own session: a stream holds it
            try:
                response = client.session.post(client.get_url("/watch"), json=create,
                                                stream=True, timeout=(timeout, idle_s))
            except (gateway_errors.Etcd3Exception, requests.RequestException) as err:
                causes[url] = cause(err)
                continue
            if response.status_code != 200:
                causes[url] = f"HTTP {response.status_code}: {response.text[:200]}"
                response.close()
                continue
            return WatchStream(self, url, response)
        raise self._unreachable(causes)


class WatchStream:
    """The answers of one watch (dicts: created, events, canceled, compact_revision) until
    the stream ends: etcd went away, `idle_s` passed without a byte (the caller opens a
    new one from where it was), or `close()`."""

    def __init__(self, client, url, response):
        self.client, self.url, self._response = client, url, response

    def __iter__(self):
        try:
            for line in self._response.iter_lines():
                if not line.strip():
                    continue
                result = json.loads(line).get("result") or {}
                self.client.check_cluster(self.url, result)
                yield result
        except (requests.RequestException, ValueError, AttributeError, OSError):
            return   # the stream broke (or was closed): the caller resumes
        finally:
            self._response.close()

    def events(self, what):
        """The stream's events in order; None (then the end) when etcd compacted past
        its start: the caller reads `what` whole. StateError when etcd cancelled it."""
        for result in self:
            if int(result.get("compact_revision") or 0):
                yield None
                return
            if result.get("canceled"):
                raise StateError(f"etcd cancelled the watch on {what}: "
                                 f"{result.get('cancel_reason') or 'no reason given'}")
            yield from result.get("events") or ()

    def close(self):
        self._response.close()
