"""The state store on etcd (`state.backend: etcd`): every node of a controller cluster
reads and writes the same documents, and hears of each other's changes at once.

Keys, below the configured prefix (default /sdn):
- `<prefix>/meta`: {"cluster": <state.etcd.cluster>, "format": FORMAT}, written by the
  first node that finds it absent. A node of another cluster name or stored format is
  refused at load with a clear error (and a save is refused if the marker changed
  since: another cluster took the prefix over).
- `<prefix>/state/<app>`: the app's document as JSON (sorted keys). Its revision is the
  key's mod_revision in etcd (NO_REVISION while the key is absent).

`save` is one transaction: compare(the key's mod_revision == expected, the marker's
mod_revision == the one checked) then put. etcd answers a transaction only once a
quorum committed it, so a save that returned is durable on the cluster.

`watch` runs a watch stream in a green thread (`hub.spawn`): it resumes at the last
revision it knew after the stream broke, and after a compaction (the revisions it
missed are gone) it reloads the document whole. Changes this store made or loaded
itself are not reported. `poll()` has nothing to do: etcd pushes.
"""
import functools
import json
import logging
import os
import threading
import time

from controller import etcd_client
from controller.etcd_client import decode, encode
from controller.state import NO_REVISION, StateError, StateStore, conflict

LOG = logging.getLogger(__name__)
FORMAT = 1             # of what is stored under the prefix; another one is refused
WATCH_IDLE_S = 30.0    # a stream silent this long is opened again (a dead link shows)
WATCH_PAUSE_S = 0.1    # between two streams (a stream that ends at once cannot spin)
WATCH_BACKOFF_MAX_S = 2.0   # longest pause between two failed attempts to watch


def _spawn(function):
    from ryu.lib import hub   # deferred: the CLI and tests build stores without Ryu's hub
    return hub.spawn(function)


def _revision(value) -> int:
    return int(value or 0)


def factory(settings, make_client=None, spawn=_spawn):
    """app name -> EtcdStateStore, all on one client (its rotation and cluster check
    shared) for the `state.etcd` settings."""
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(settings, name)
        if path is not None and not os.access(path, os.R_OK):
            raise StateError(f"cannot read state.etcd.{name} {path}")
    make_client = make_client or functools.partial(
        etcd_client.gateway_client, ca_file=settings.ca_file, cert_file=settings.cert_file,
        key_file=settings.key_file)
    client = etcd_client.EtcdClient(settings.endpoints, settings.timeout_s, make_client)
    return lambda app: EtcdStateStore(app, client, settings.prefix, settings.cluster,
                                      spawn=spawn)


class EtcdStateStore(StateStore):
    def __init__(self, app, client, prefix="/sdn", cluster="sdn", spawn=_spawn,
                 idle_s=WATCH_IDLE_S):
        super().__init__(app)
        self.client, self.prefix, self.cluster = client, prefix, cluster
        self.key = f"{prefix}/state/{app}"
        self.meta_key = f"{prefix}/meta"
        self._spawn, self.idle_s = spawn, idle_s
        # under eventlet's monkey patching a green lock: the watch thread waits for a
        # save in flight, so it never reports this store's own write as another's
        self._lock = threading.Lock()
        self._meta_revision = None   # the marker's mod_revision, once checked
        self._seen = None            # the revision of the document last loaded/saved/told
        self._position = None        # every change of the key up to here is known
        self._watching = False
        self._failures = 0           # watch attempts failed in a row
        self.closed = False

    # --- the stored format and cluster ----------------------------------------------

    def _check_meta(self):
        ours = {"cluster": self.cluster, "format": FORMAT}
        answer, _ = self.client.call("kv/range", {"key": encode(self.meta_key)})
        kvs = answer.get("kvs")
        if not kvs:   # a fresh prefix: mark it ours, unless another node just did
            key = encode(self.meta_key)
            answer, _ = self.client.call("kv/txn", {
                "compare": [{"key": key, "target": "CREATE", "result": "EQUAL",
                             "create_revision": 0}],
                "success": [{"request_put": {"key": key, "value": encode(
                    json.dumps(ours, sort_keys=True))}}],
                "failure": [{"request_range": {"key": key}}]})
            if answer.get("succeeded"):
                self._meta_revision = _revision(answer["header"]["revision"])
                return
            kvs = answer["responses"][0]["response_range"].get("kvs")
        try:
            found = json.loads(decode(kvs[0].get("value", "")))
        except ValueError:
            found = None
        if found != ours:
            raise StateError(
                f"etcd data under {self.prefix} ({', '.join(self.client.endpoints)}) belongs "
                f"to {self._describe(found)}; this node is cluster {self.cluster!r} with "
                f"stored format {FORMAT}: refused. Use the right state.etcd.cluster, or "
                f"another state.etcd.prefix for a cluster of its own")
        self._meta_revision = _revision(kvs[0]["mod_revision"])

    @staticmethod
    def _describe(found):
        if not isinstance(found, dict) or set(found) != {"cluster", "format"}:
            return f"something else ({json.dumps(found)[:100]} in its meta key)"
        return f"cluster {found['cluster']!r} with stored format {found['format']!r}"

    # --- load and save ----------------------------------------------------------------

    def _parse(self, kv):
        """(document, revision) of a key-value as etcd gives it (None: no key)."""
        if kv is None:
            return {}, NO_REVISION
        try:
            data = json.loads(decode(kv.get("value", "")))
        except ValueError as err:
            raise StateError(f"state of {self.app} in etcd ({self.key}) is corrupt ({err}); "
                             f"delete the key to start from the config file alone") from None
        if not isinstance(data, dict):
            raise StateError(f"state of {self.app} in etcd ({self.key}) must be a JSON object")
        return data, _revision(kv["mod_revision"])

    def _advance(self, answer):
        revision = _revision((answer.get("header") or {}).get("revision"))
        self._position = revision if self._position is None else max(self._position, revision)

    def _read(self):
        answer, _ = self.client.call("kv/range", {"key": encode(self.key)})
        return answer, (answer.get("kvs") or [None])[0]

    def load(self):
        if self._meta_revision is None:
            self._check_meta()
        with self._lock:
            answer, kv = self._read()
            document, revision = self._parse(kv)
            self._seen = revision
            self._advance(answer)
        return document, revision

    def save(self, document, expected_revision):
        text = json.dumps(document, sort_keys=True)
        if self._meta_revision is None:
            self._check_meta()
        key, meta = encode(self.key), encode(self.meta_key)
        txn = {"compare": [
            {"key": key, "target": "MOD", "result": "EQUAL", "mod_revision": expected_revision},
            {"key": meta, "target": "MOD", "result": "EQUAL",
             "mod_revision": self._meta_revision}],
            "success": [{"request_put": {"key": key, "value": encode(text)}}],
            "failure": [{"request_range": {"key": key}}, {"request_range": {"key": meta}}]}
        with self._lock:
            answer, retried = self.client.call("kv/txn", txn)
            revision = _revision(answer["header"]["revision"])
            if not answer.get("succeeded"):
                revision = self._refused(answer, text, expected_revision, retried)
            self._seen = revision
            self._advance(answer)
        return revision

    def _refused(self, answer, text, expected_revision, retried):
        """The revision our write has after all, or why nothing was saved."""
        current, marker = ((r["response_range"].get("kvs") or [None])[0]
                           for r in answer["responses"])
        if marker is None or _revision(marker["mod_revision"]) != self._meta_revision:
            raise StateError(f"state of {self.app}: the cluster marker {self.meta_key} in etcd "
                             f"changed since this node checked it (another cluster on the "
                             f"same prefix?); nothing was saved: restart this node")
        if retried and current is not None and decode(current.get("value", "")) == text:
            return _revision(current["mod_revision"])   # an attempt that timed out landed
        raise conflict(self.app, _revision(current and current["mod_revision"]),
                       expected_revision)

    # --- hearing of other writers ---------------------------------------------------

    def watch(self, callback):
        super().watch(callback)
        if not self._watching:
            self._watching = True
            self._spawn(self._watch_loop)

    def close(self):
        """Stop the watch thread, at its stream's next answer or end (at most idle_s).
        Its stream is not closed from here: closing a TLS stream that another thread
        reads waits for that read."""
        self.closed = True

    def _watch_loop(self):
        while not self.closed:
            try:
                self.watch_once()
                time.sleep(WATCH_PAUSE_S)
            except StateError as err:
                self._failures += 1
                if self._failures == 1:   # said once; "again" when it is back
                    LOG.warning("state of %s: watching etcd: %s; retrying", self.app, err)
                time.sleep(min(WATCH_BACKOFF_MAX_S, 0.1 * 2 ** self._failures))
            except Exception:  # noqa: BLE001 -- a bug shows, and the watch goes on
                LOG.exception("state of %s: the watch on etcd failed", self.app)
                time.sleep(WATCH_BACKOFF_MAX_S)
        LOG.debug("state of %s: watch stopped", self.app)

    def watch_once(self):
        """One watch stream from where this store was, until it ends."""
        if self._position is None:
            self.resync()
        stream = self.client.watch(self.key, self._position + 1, self.idle_s)
        if self._failures:
            LOG.warning("state of %s: watching etcd again (%s)", self.app, stream.url)
            self._failures = 0
        try:
            for result in stream:
                if self.closed:
                    return
                if _revision(result.get("compact_revision")):
                    LOG.info("state of %s: etcd compacted past revision %d: reloading the "
                             "document whole", self.app, self._position)
                    self.resync()
                    return
                if result.get("canceled"):
                    raise StateError(f"etcd cancelled the watch on {self.key}: "
                                     f"{result.get('cancel_reason') or 'no reason given'}")
                for event in result.get("events") or ():
                    self._event(event)
        finally:
            stream.close()

    def _event(self, event):
        kv = event["kv"]
        with self._lock:
            revision = _revision(kv.get("mod_revision"))
            if self._position is not None and revision <= self._position:
                return   # loaded or saved by this store already
            self._position = revision
            if event.get("type") == "DELETE":
                document, revision = {}, NO_REVISION
            else:
                try:
                    document, revision = self._parse(kv)
                except StateError as err:
                    LOG.error("%s; keeping the document this node has", err)
                    return
            self._seen = revision
        self._tell(document, revision)

    def resync(self):
        """Read the document whole (a start, or after a compaction): the watchers hear of
        it if it is not the one this store last had."""
        with self._lock:
            answer, kv = self._read()
            document, revision = self._parse(kv)
            changed = self._seen is not None and revision != self._seen
            self._seen = revision
            self._advance(answer)
        if changed:
            self._tell(document, revision)

    def _tell(self, document, revision):
        try:
            self._changed_elsewhere(document, revision)
        except Exception:  # noqa: BLE001 -- the watch goes on; the traceback shows the bug
            LOG.exception("state of %s: applying another writer's change failed", self.app)
