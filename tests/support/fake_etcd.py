"""An etcd cluster in memory, answering as etcd's HTTP gateway does, behind fakes of
etcd3gw's Etcd3Client (what controller/etcd_client.py talks to): ranges, transactions
(MOD/CREATE/VALUE/LEASE compares, puts and deletes), ranges and watches of a prefix
(range_end), watch streams from a revision (with compaction), leases (grant, keepalive,
revoke; expiry when the test says, deleting the lease's keys), endpoints that are
down, slow or of another cluster."""
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
        self.leases = {}       # lease id (decimal string) -> TTL granted
        self._next_lease = 7000

    def client(self, url, timeout):
        return FakeGateway(self, url, timeout)

    def header(self, url):
        cluster = "999" if url in self.other_cluster else self.cluster_id
        return {"cluster_id": cluster, "member_id": "1", "revision": str(self.revision)}

    # --- what etcd does --------------------------------------------------------------

    def put(self, key, value, lease=None):
        self.revision += 1
        old = self.kv.get(key)
        self.kv[key] = {"key": b64(key), "value": b64(value), "mod_revision": str(self.revision),
                        "create_revision": old["create_revision"] if old else str(self.revision),
                        "version": str(int(old["version"]) + 1 if old else 1)}
        if lease and int(lease):
            assert str(lease) in self.leases, f"put on lease {lease}, not granted"
            self.kv[key]["lease"] = str(lease)
        self.history.append((self.revision, "PUT", key, dict(self.kv[key])))
        return self.revision

    def delete(self, key):
        if key not in self.kv:
            return
        self.revision += 1
        del self.kv[key]
        self.history.append((self.revision, "DELETE", key,
                             {"key": b64(key), "mod_revision": str(self.revision)}))

    def stored(self, key):
        """The JSON value of `key`, parsed."""
        return json.loads(unb64(self.kv[key]["value"]))

    def compact(self):
        self.compacted = self.revision

    # --- leases -------------------------------------------------------------------------

    def grant(self, ttl):
        self._next_lease += 1
        self.leases[str(self._next_lease)] = int(ttl)
        return str(self._next_lease)

    def expire(self, lease):
        """The lease's TTL ran out (the test says when): its keys go, as DELETE events."""
        self.leases.pop(str(lease), None)
        keys = [k for k, kv in sorted(self.kv.items()) if kv.get("lease") == str(lease)]
        if keys:
            self.revision += 1   # as etcd does: every key of the lease in one revision
        for key in keys:
            del self.kv[key]
            self.history.append((self.revision, "DELETE", key,
                                 {"key": b64(key), "mod_revision": str(self.revision)}))

    def _lease(self, url, path, body):
        lease = str(body["ID"])
        if path == "lease/grant":
            return {"header": self.header(url), "ID": self.grant(body["TTL"]),
                    "TTL": str(body["TTL"])}
        if path == "lease/keepalive":   # an expired or unknown lease: no TTL in the answer
            result = {"header": self.header(url), "ID": lease}
            if lease in self.leases:
                result["TTL"] = str(self.leases[lease])
            return {"result": result}
        if lease not in self.leases:    # kv/lease/revoke
            raise gateway_errors.Etcd3Exception('{"error": "etcdserver: requested lease '
                                                'not found", "code": 5}')
        self.expire(lease)
        return {"header": self.header(url)}

    # --- keys ---------------------------------------------------------------------------

    def keys(self, body):
        key = unb64(body["key"])
        if "range_end" not in body:
            return [key] if key in self.kv else []
        end = unb64(body["range_end"])
        return [k for k in sorted(self.kv) if key <= k < end]

    def _range(self, url, body):
        keys = self.keys(body)
        answer = {"header": self.header(url)}
        if keys:
            answer.update(kvs=[dict(self.kv[k]) for k in keys], count=str(len(keys)))
        return answer

    def _compare(self, compare):
        kv = self.kv.get(unb64(compare["key"]), {})
        assert compare["result"] == "EQUAL"
        if compare["target"] == "VALUE":
            return kv.get("value") == compare["value"]
        field = {"MOD": "mod_revision", "CREATE": "create_revision",
                 "LEASE": "lease"}[compare["target"]]
        return int(kv.get(field, 0)) == int(compare[field])

    def _txn(self, url, body):
        ok = all(self._compare(c) for c in body["compare"])
        responses = []
        for op in body["success" if ok else "failure"]:
            if "request_put" in op:
                put = op["request_put"]
                self.put(unb64(put["key"]), unb64(put["value"]), put.get("lease"))
                responses.append({"response_put": {"header": {"revision": str(self.revision)}}})
            elif "request_delete_range" in op:
                keys = self.keys(op["request_delete_range"])
                for key in keys:
                    self.delete(key)
                responses.append({"response_delete_range": {"deleted": str(len(keys))}})
            else:
                responses.append({"response_range": self._range(url, op["request_range"])})
        answer = {"header": self.header(url), "responses": responses}
        if ok:
            answer["succeeded"] = True
        return answer

    def answer(self, url, path, body):
        if path in ("lease/grant", "lease/keepalive", "kv/lease/revoke"):
            return self._lease(url, path, body)
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
        """Whether a watch created with `create` (its create_request) sees `key`: the key
        itself, or every key in [key, range_end) with one."""
        start = unb64(create["key"])
        end = unb64(create["range_end"]) if "range_end" in create else None
        return key == start if end is None else start <= key < end


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
