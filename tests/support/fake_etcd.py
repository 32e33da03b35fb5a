"""An etcd cluster in memory, answering as etcd's HTTP gateway does, behind fakes of
etcd3gw's Etcd3Client (what controller/etcd_client.py talks to): ranges, transactions
(MOD/CREATE compares), watch streams from a revision (with compaction), endpoints that
are down, slow or of another cluster."""
import base64
import json
import time

from etcd3gw import exceptions as gateway_errors

REFUSED = ("HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: "
           "/v3/kv/range (Caused by NewConnectionError('<urllib3.connection.HTTPConnection "
           "object at 0x7f>: Failed to establish a new connection: [Errno 111] Connection "
           "refused'))")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(value):
    return base64.b64decode(value).decode()


class FakeEtcd:
    def __init__(self, cluster_id="111"):
        self.cluster_id = cluster_id
        self.revision = 1
        self.kv = {}           # key -> {"value", "create_revision", "mod_revision", "version"}
        self.history = []      # (revision, type, key, kv) of every change
        self.compacted = 0
        self.down = set()      # urls that refuse connections
        self.slow = set()      # urls that take the whole attempt timeout, then time out
        self.other_cluster = set()   # urls that answer for another etcd cluster
        self.calls = []        # (url, path, attempt timeout)
        self.watches = []      # (url, start_revision) of every watch opened
        self.after_commit = None   # raise this once, after applying the next txn

    def client(self, url, timeout):
        return FakeGateway(self, url, timeout)

    def header(self, url):
        cluster = "999" if url in self.other_cluster else self.cluster_id
        return {"cluster_id": cluster, "member_id": "1", "revision": str(self.revision)}

    # --- what etcd does --------------------------------------------------------------

    def put(self, key, value):
        self.revision += 1
        old = self.kv.get(key)
        self.kv[key] = {"key": b64(key), "value": b64(value), "mod_revision": str(self.revision),
                        "create_revision": old["create_revision"] if old else str(self.revision),
                        "version": str(int(old["version"]) + 1 if old else 1)}
        self.history.append((self.revision, "PUT", key, dict(self.kv[key])))
        return self.revision

    def delete(self, key):
        self.revision += 1
        del self.kv[key]
        self.history.append((self.revision, "DELETE", key,
                             {"key": b64(key), "mod_revision": str(self.revision)}))

    def stored(self, key):
        """The JSON value of `key`, parsed."""
        return json.loads(unb64(self.kv[key]["value"]))

    def compact(self):
        self.compacted = self.revision

    def _range(self, url, body):
        key = unb64(body["key"])
        answer = {"header": self.header(url)}
        if key in self.kv:
            answer.update(kvs=[dict(self.kv[key])], count="1")
        return answer

    def _compare(self, compare):
        kv = self.kv.get(unb64(compare["key"]), {})
        field = {"MOD": "mod_revision", "CREATE": "create_revision"}[compare["target"]]
        assert compare["result"] == "EQUAL"
        return int(kv.get(field, 0)) == int(compare[field])

    def _txn(self, url, body):
        ok = all(self._compare(c) for c in body["compare"])
        responses = []
        for op in body["success" if ok else "failure"]:
            if "request_put" in op:
                put = op["request_put"]
                self.put(unb64(put["key"]), unb64(put["value"]))
                responses.append({"response_put": {"header": {"revision": str(self.revision)}}})
            else:
                responses.append({"response_range": self._range(url, op["request_range"])})
        answer = {"header": self.header(url), "responses": responses}
        if ok:
            answer["succeeded"] = True
        return answer

    def answer(self, url, path, body):
        return {"kv/range": self._range, "kv/txn": self._txn}[path](url, body)

    def stream(self, url, body):
        """What a watch from start_revision sends until now, as gateway lines."""
        create = body["create_request"]
        start = int(create.get("start_revision", 0))
        self.watches.append((url, start))
        lines = [{"result": {"header": self.header(url), "created": True}}]
        if start and start <= self.compacted:
            lines.append({"result": {"header": self.header(url), "canceled": True,
                                     "compact_revision": str(self.compacted)}})
        else:
            for revision, kind, changed, kv in self.history:
                if self.watched(create, changed) and revision >= start:
                    event = {"kv": kv} if kind == "PUT" else {"type": "DELETE", "kv": kv}
                    lines.append({"result": {"header": self.header(url), "events": [event]}})
        return [json.dumps(line).encode() for line in lines]


    def watched(self, create, key):
        """Whether a watch created with `create` (its create_request) sees `key`."""
        return key == unb64(create["key"])


class FakeGateway:
    """etcd3gw.Etcd3Client's surface that controller/etcd_client.py uses."""

    def __init__(self, etcd, url, timeout):
        self.etcd, self.url, self.timeout = etcd, url, timeout
        self.session = FakeSession(self)

    def get_url(self, path):
        return path.lstrip("/")

    def refuse(self):
        if self.url in self.etcd.down:
            raise gateway_errors.ConnectionFailedError(REFUSED)
        if self.url in self.etcd.slow:
            time.sleep(self.timeout)
            raise gateway_errors.ConnectionTimeoutError("Read timed out. (read timeout=...)")

    def post(self, path, json=None):
        self.etcd.calls.append((self.url, path, self.timeout))
        self.refuse()
        answer = self.etcd.answer(self.url, path, json)
        if path == "kv/txn" and self.etcd.after_commit is not None:
            err, self.etcd.after_commit = self.etcd.after_commit, None
            raise err
        return answer


class FakeSession:
    def __init__(self, gateway):
        self.gateway = gateway

    def post(self, path, json=None, stream=False, timeout=None):
        self.gateway.refuse()
        return FakeResponse(lambda: self.gateway.etcd.stream(self.gateway.url, json))


class FakeResponse:
    """A watch stream: what etcd holds when it is read (a change made after the watch
    was opened but before it was read is in it, as on a real stream)."""
    status_code = 200

    def __init__(self, lines):
        self.lines, self.closed = lines, False

    def iter_lines(self):
        yield from self.lines()

    def close(self):
        self.closed = True
