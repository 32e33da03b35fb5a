"""Learned state that the nodes of a cluster share (docs/cluster-learned-state.md).

Some of what an app learns from the network is seen by one node only: a slave gets no
packet-ins, so an LLDP frame is heard only by the master of the switch it arrives at.
Where every node needs the whole picture (the topology app's links), each node
publishes what it learned itself as one JSON document, and reads everyone else's:

    <prefix>/learned/<app>/<node_id>   this node's document, attached to its own lease

The lease is this module's own (granted for `lease_s`, kept alive every lease_s / 3 in a
green thread), so a node that dies, or is cut off from etcd, loses its document when the
lease expires: what it learned ages out of everyone's view, and the switches it mastered
are re-learned by their new masters. A lease found expired (this node was paused past
it) is granted again and the document put again.

Every node watches <prefix>/learned/<app>/ the way controller/etcd_store.py watches a
document: the stream resumes at the last revision it knew, and after a compaction the
whole prefix is read again. `documents()` gives the other live nodes' documents; the
app merges them (the merge is the app's, pure, in flows/). `on_change(documents)` is
called after each change, in the watch's green thread.

Single node (state.backend sqlite, or no node id): `for_app` returns None and the app
runs exactly as it always did; nothing here talks to etcd.
"""
import functools
import json
import logging
import os
import threading
import time

from controller import config, etcd_client
from controller.etcd_client import decode, encode
from controller.state import StateError

LOG = logging.getLogger(__name__)
NODE_ENV = "SDN_NODE"       # the test FileElector's name for this node
DEFAULT_LEASE_S = 2.0
WATCH_IDLE_S = 30.0         # a silent stream is opened again (a dead link shows)
RETRY_MAX_S = 2.0           # longest pause between two failed attempts to watch


def cluster_identity(data=None):
    """(node id, lease seconds) when this node is one of a cluster, else None.

    Cluster mode is the `cluster` section (controller/config.py cluster_settings: it
    requires `state.backend: etcd`). Tests that choose masters with the file elector
    (tests/support/file_elector.py) have no such section: for them, `state.backend:
    etcd` and the SDN_NODE environment variable name the node."""
    data = config.load_file() if data is None else data
    settings = config.cluster_settings(data)
    if settings is not None:
        cluster, _ = settings
        return cluster.node_id, float(cluster.lease_s)
    if config.state_settings(data).backend != "etcd" or not os.environ.get(NODE_ENV):
        return None
    return os.environ[NODE_ENV], float(DEFAULT_LEASE_S)


def for_app(app, on_change, data=None, make_client=None, spawn=None):
    """A started SharedLearned of `app` in cluster mode, None for a single node. A bad
    config is a ConfigError (the app stops at start with the reason)."""
    data = config.load_file() if data is None else data
    identity = cluster_identity(data)
    if identity is None:
        return None
    node, lease_s = identity
    etcd = config.state_settings(data).etcd
    make_client = make_client or functools.partial(
        etcd_client.gateway_client, ca_file=etcd.ca_file, cert_file=etcd.cert_file,
        key_file=etcd.key_file)
    client = etcd_client.EtcdClient(etcd.endpoints, etcd.timeout_s, make_client)
    shared = SharedLearned(client, etcd.prefix, app, node, lease_s, on_change,
                           spawn=spawn or _spawn)
    shared.start()
    return shared


def _spawn(function):
    from ryu.lib import hub   # deferred: unit tests run the loops by hand
    return hub.spawn(function)


class SharedLearned:
    def __init__(self, client, prefix, app, node_id, lease_s=DEFAULT_LEASE_S,
                 on_change=None, spawn=_spawn, idle_s=WATCH_IDLE_S, clock=time.monotonic):
        if "/" in node_id or not node_id:
            raise ValueError(f"a node id must be a non-empty name without '/', not {node_id!r}")
        self.client, self.app, self.node_id = client, app, node_id
        self.lease_s, self.idle_s = lease_s, idle_s
        self.dir = f"{prefix}/learned/{app}/"
        self.key = self.dir + node_id
        self._on_change, self._spawn, self._clock = on_change, spawn, clock
        self._lock = threading.Lock()      # green under eventlet: watch vs. resync
        self._wake = threading.Event()     # a new document to put: do not wait
        self._documents = {}               # node id -> its document (live nodes)
        self._position = None              # every change under dir up to here is known
        self._lease = None                 # our lease's id (None: none granted yet)
        self._renew_at = 0.0
        self._wanted = None                # the JSON text this node wants published
        self._published = None             # the JSON text put under our lease
        self._failing = {"lease": False, "watch": False}
        self.closed = False

    def start(self):
        self._spawn(self._lease_loop)
        self._spawn(self._watch_loop)

    def close(self):
        """Stop both loops and take our document away now (not at the lease's end)."""
        self.closed = True
        self._wake.set()
        if self._lease is not None:
            try:
                self.client.call("kv/lease/revoke", {"ID": self._lease})
            except StateError as err:
                LOG.info("learned %s: revoking the lease: %s (it expires anyway)", self.app, err)

    # --- this node's document ------------------------------------------------------

    def publish(self, document: dict) -> None:
        """What this node learned, as it is now: put in etcd by the lease loop, at once
        (this call does not wait for etcd). The same document twice is put once."""
        self._wanted = json.dumps(document, sort_keys=True)
        if self._wanted != self._published:
            self._wake.set()

    def step(self) -> None:
        """One round of the lease loop: a lease (granted when there is none or it
        expired), kept alive when due, and our document put when it changed."""
        now = self._clock()
        if self._lease is not None and now >= self._renew_at:
            answer, _ = self.client.call("lease/keepalive", {"ID": self._lease})
            if int((answer.get("result") or {}).get("TTL", 0) or 0) <= 0:
                LOG.warning("learned %s: lease of node %s expired (paused or cut off from "
                            "etcd past %g s): publishing again", self.app, self.node_id,
                            self.lease_s)
                self._lease = None
            else:
                self._renew_at = now + self.lease_s / 3
        if self._lease is None:
            answer, _ = self.client.call("lease/grant", {"TTL": int(round(self.lease_s)),
                                                         "ID": 0})
            self._lease, self._published = answer["ID"], None
            self._renew_at = now + self.lease_s / 3
        if self._wanted is not None and self._wanted != self._published:
            text = self._wanted
            try:
                self.client.call("kv/put", {"key": encode(self.key), "value": encode(text),
                                            "lease": self._lease})
            except StateError:
                # the lease may have expired since its keepalive (etcd refuses a put on
                # it): the next round grants a new one; an old lease still alive expires
                # by itself and no longer holds the key once it is put on the new one
                self._lease = None
                raise
            self._published = text

    def _lease_loop(self):
        while not self.closed:
            try:
                self.step()
                self._said("lease", None)
            except StateError as err:
                self._said("lease", err)
            except Exception:  # noqa: BLE001 -- a bug shows, and the lease is kept going
                LOG.exception("learned %s: the lease loop failed", self.app)
            self._wake.wait(self.lease_s / 3)
            self._wake.clear()

    def _said(self, what, err):
        """Log a failure once, and once that it is over."""
        if err is not None and not self._failing[what]:
            LOG.warning("learned %s: %s on etcd: %s; retrying", self.app, what, err)
        elif err is None and self._failing[what]:
            LOG.warning("learned %s: %s on etcd works again", self.app, what)
        self._failing[what] = err is not None

    # --- everyone else's -------------------------------------------------------------

    def documents(self) -> dict:
        """{node id: document} of every other node whose lease is alive."""
        with self._lock:
            return {node: doc for node, doc in self._documents.items() if node != self.node_id}

    def _parse(self, kv):
        """(node id, document or None when it is not a JSON object)."""
        node = decode(kv["key"])[len(self.dir):]
        document = etcd_client.json_object(kv)
        if document is None:
            LOG.error("learned %s: the document of node %s in etcd is not a JSON object: "
                      "left out", self.app, node)
            return node, None
        return node, document

    def resync(self) -> None:
        """Read every node's document (at start, and after a compaction)."""
        answer, _ = self.client.call("kv/range", etcd_client.prefix_range(self.dir))
        documents = {}
        for kv in answer.get("kvs") or ():
            node, document = self._parse(kv)
            if document is not None and "/" not in node:
                documents[node] = document
        with self._lock:
            self._documents = documents
            self._position = int(answer["header"]["revision"])
        self._tell()

    def watch_once(self) -> None:
        """One watch stream from where this node was, until it ends."""
        if self._position is None:
            self.resync()
        stream = self.client.watch(self.dir, self._position + 1, self.idle_s,
                                   range_end=etcd_client.prefix_end(self.dir))
        try:
            for result in stream:
                if self.closed or not self._answer(result):
                    return
        finally:
            stream.close()

    def _answer(self, result) -> bool:
        """Take one answer of the stream in; False when the stream is done with (etcd
        compacted past where it started: every document is read again instead)."""
        if result.get("canceled") and not int(result.get("compact_revision") or 0):
            raise StateError(f"etcd cancelled the watch on {self.dir}: "
                             f"{result.get('cancel_reason') or 'no reason given'}")
        if int(result.get("compact_revision") or 0):
            LOG.info("learned %s: etcd compacted past revision %d: reading every document "
                     "again", self.app, self._position)
            self.resync()
            return False
        if self._apply(result.get("events") or ()):
            self._tell()
        return True

    def _apply(self, events) -> bool:
        changed = False
        with self._lock:
            for event in events:
                kv = event["kv"]
                revision = int(kv.get("mod_revision") or 0)
                if revision <= self._position:
                    continue   # read by a resync already
                self._position = revision
                node, document = (decode(kv["key"])[len(self.dir):], None) \
                    if event.get("type") == "DELETE" else self._parse(kv)
                if "/" in node:
                    continue
                if document is None:
                    changed |= self._documents.pop(node, None) is not None
                elif self._documents.get(node) != document:
                    self._documents[node] = document
                    changed = True
        return changed

    def _tell(self):
        if self._on_change is None:
            return
        try:
            self._on_change(self.documents())
        except Exception:  # noqa: BLE001 -- the watch goes on; the traceback shows the bug
            LOG.exception("learned %s: applying the other nodes' documents failed", self.app)

    def _watch_loop(self):
        etcd_client.watch_forever(self.watch_once, lambda: self.closed, time.sleep,
                                  lambda err, _: self._said("watch", err),
                                  f"learned {self.app}", longest_s=RETRY_MAX_S)
