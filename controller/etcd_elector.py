"""The etcd-backed elector of a controller cluster (`cluster:` in the config file;
docs/cluster-election.md): one master per switch, decided in etcd.

Keys, below `state.etcd.prefix` (default /sdn):
- `<prefix>/cluster/nodes/<node_id>`: this node's record (JSON: apps, config_digest,
  rest_url, openflow, pid, started, format), attached to the node's lease;
- `<prefix>/cluster/masters/<16 hex dpid>`: the node_id of the switch's master,
  attached to that node's lease. Its create_revision is the win's generation_id: etcd's
  revision only grows, so a later win (by any node) has a larger one.

One lease per node, kept alive every lease_s/3 from a green thread. A node whose
keepalive has not succeeded for LOST_AFTER * lease_s (before etcd can have let the
lease expire and another node taken over) gives every switch up at once and stops
writing; it keeps trying, and when etcd answers again it takes a new lease, writes its
record again and contends anew. A watch on `<prefix>/cluster/` (resumed at the last
revision, re-read whole after a compaction) tells of freed keys (the holder's lease
expired, or it released) and of other nodes.

Masters are spread by rendezvous hashing: for a free switch, the live node with the
highest hash(node_id, dpid) contends at once, the others SPREAD_DELAY_S later (if it
is still free), so a dead preferred node costs little.
"""
import functools
import hashlib
import json
import logging
import os
import time

from controller import etcd_client, mastership
from controller.etcd_client import (decode, encode, json_object, prefix_end, prefix_range,
                                    watch_forever)
from controller.state import StateError
from flows.dpid import format as format_dpid

LOG = logging.getLogger(__name__)
FORMAT = 1             # of the node record; another one is refused at join
KEEPALIVES_PER_LEASE = 3
LOST_AFTER = 0.6       # of lease_s without a keepalive answer: this node gives up
SPREAD_DELAY_S = 0.4   # a node not preferred for a free switch waits this long
RETRY_S = 0.3          # between two attempts to reach etcd again after a loss
# a watch silent this many leases is opened again (from where it was): a stream to a
# member that vanished without a FIN (power lost) must not hide freed switches for long
WATCH_IDLE_LEASES = 2
WATCH_PAUSE_S = 0.1
# what a node record must agree on with every live one (node-local fields may differ)
AGREED = {"apps": "every node of a cluster runs the same apps",
          "config_digest": "the config sections of the apps differ (only api, openflow, "
                           "state and cluster may differ between nodes)",
          "format": "a node of another version (its record's format)"}


def _spawn_after(delay, function, *args):
    from ryu.lib import hub   # deferred: unit tests schedule on their own
    return hub.spawn_after(delay, function, *args)


def _sleep(seconds):
    from ryu.lib import hub
    hub.sleep(seconds)


def preferred(nodes, dpid):
    """Rendezvous (highest random weight) hashing: the node a free switch goes to.
    Every node computes the same answer from the same live set, and a node that goes
    away moves only its own switches."""
    return max(sorted(nodes), key=lambda node: hashlib.sha256(
        f"{node}/{format_dpid(dpid)}".encode()).digest(), default=None)


def config_digest(data: dict, sections) -> str:
    """sha256 of the canonical JSON of the config sections of the loaded apps (not the
    node-local ones: api, openflow, state, cluster)."""
    document = {name: data.get(name) or {} for name in sorted(sections)}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class EtcdElector(mastership.Elector):
    CLUSTERED = True

    def __init__(self, cluster, etcd, record, client=None, keepalive_client=None,
                 spawn_after=_spawn_after, sleep=_sleep, clock=time.monotonic,
                 background=True, spread_delay_s=SPREAD_DELAY_S):
        """`cluster`, `etcd`: config.ClusterSettings and EtcdSettings; `record`: the
        node record's process fields (apps, config_digest, openflow, pid, started)."""
        self.node_id, self.lease_s = cluster.node_id, cluster.lease_s
        cluster_prefix = f"{etcd.prefix}/cluster/"
        self.prefix, self.nodes_prefix = cluster_prefix, cluster_prefix + "nodes/"
        self.masters_prefix = cluster_prefix + "masters/"
        self.record = dict(record, node_id=self.node_id, rest_url=cluster.rest_url,
                           format=FORMAT)
        make = functools.partial(etcd_client.gateway_client, ca_file=etcd.ca_file,
                                 cert_file=etcd.cert_file, key_file=etcd.key_file)
        self.client = client or etcd_client.EtcdClient(etcd.endpoints, etcd.timeout_s, make)
        # a keepalive must fail fast: the node has LOST_AFTER * lease_s to notice
        self.keepalive_client = keepalive_client or etcd_client.EtcdClient(
            etcd.endpoints, self.lease_s / 4, make)
        self._spawn_after, self._sleep, self._clock = spawn_after, sleep, clock
        self._background, self.spread_delay_s = background, spread_delay_s
        self.lease = None          # our lease id (etcd's decimal string) while healthy
        self._old_lease = None     # the lease given up after a failed keepalive
        self.healthy = False
        self._last_ok = None       # clock() when the last successful keepalive was sent
        self.last_error = None
        self._wanted = set()       # switches this node sees (would like to be master of)
        self._held = {}            # dpid -> generation of our win
        self._releasing = set()
        self._holders = {}         # dpid -> node_id holding it, as last heard
        self._generations = {}     # dpid -> newest create_revision heard of
        self.nodes = {}            # node_id -> record of every live node (ours too)
        self._position = None      # every change under the prefix up to here is known
        self._read_at = 0          # revision of the last whole read (older news: known)
        self.closed = False

    # --- joining -----------------------------------------------------------------------

    def start(self, won, lost):
        super().start(won, lost)
        try:
            self.join()
        except StateError as err:
            raise SystemExit(f"cluster: node {self.node_id}: {err}") from None
        LOG.info("cluster: node %s joined (lease %s, %d live node(s): %s)", self.node_id,
                 self.lease, len(self.nodes), ", ".join(sorted(self.nodes)))
        if self._background:
            self._spawn_after(0, self._keepalive_loop)
            self._spawn_after(0, self._watch_loop)

    def join(self):
        """Check the live node records (SystemExit on a mismatch), take a lease and
        write this node's record; nothing is contended for yet. A record that differs,
        or has our name, may be a dead node's whose lease has not run out yet (all
        nodes restarted with a new config): it is waited out before a refusal."""
        deadline = self._clock() + self.lease_s + 1
        while True:
            records = self._read_nodes()
            problem = self._peer_problem(records)
            if problem is None and self.node_id not in records:
                break
            if self._clock() > deadline:
                raise SystemExit(problem or (
                    f"cluster: node_id {self.node_id!r} is taken by a live node (pid "
                    f"{records[self.node_id].get('pid')}, REST "
                    f"{records[self.node_id].get('rest_url')}); give this node another "
                    f"cluster.node_id, or stop the other one"))
            self._sleep(0.2)
        self._grant(create=True)
        # a node that read the records as we did and wrote its own meanwhile: one of
        # us checks the other now (both may leave: never a cluster of two configs)
        problem = self._peer_problem(self._read_nodes())
        if problem is not None:
            self._leave()
            raise SystemExit(problem)
        self.resync()

    def _leave(self):
        """Give our lease back (our record goes with it)."""
        try:
            self.client.call("kv/lease/revoke", {"ID": self.lease})
        except StateError as err:   # it runs out by itself in lease_s
            LOG.warning("cluster: node %s: giving its lease back: %s", self.node_id, err)
        self.healthy = False

    def _read_nodes(self):
        answer, _ = self.client.call("kv/range", prefix_range(self.nodes_prefix))
        return dict(filter(None, (self._node(kv) for kv in answer.get("kvs") or ())))

    def _node(self, kv):
        """(name, record) of a node record; None for a key that is not text."""
        key = _text(kv.get("key"))
        if key is None:
            return None
        try:
            record = json_object(kv)
        except ValueError:
            record = None
        return key[len(self.nodes_prefix):], record or {"format": None}

    def _peer_problem(self, records):
        """Why this node may not join nodes `records` (None: it may)."""
        for name, record in sorted(records.items()):
            if name == self.node_id:
                continue
            for field, what in AGREED.items():
                if record.get(field) != self.record[field]:
                    return (f"cluster: node {self.node_id} refused: live node {name} has "
                            f"{field} {_show(record.get(field))}, this node "
                            f"{_show(self.record[field])}: {what}")
        return None

    def _grant(self, create=False):
        answer, _ = self.client.call("lease/grant", {"TTL": self.lease_s, "ID": 0})
        if int(answer.get("TTL") or 0) <= 0 or not answer.get("ID"):
            raise StateError(f"etcd granted no lease: {answer.get('error') or answer}")
        lease = str(answer["ID"])
        key = encode(self.nodes_prefix + self.node_id)
        record = dict(self.record)
        put = {"request_put": {"key": key, "value": encode(json.dumps(record, sort_keys=True)),
                               "lease": lease}}
        compare = [{"key": key, "target": "CREATE", "result": "EQUAL",
                    "create_revision": 0}] if create else []
        answer, _ = self.client.call("kv/txn", {"compare": compare, "success": [put],
                                                "failure": []})
        if not answer.get("succeeded"):   # another process of our name came first
            raise SystemExit(f"cluster: node_id {self.node_id!r} is taken by another node "
                             f"that started at the same time; give this node another name")
        self.lease, self.healthy, self._last_ok = lease, True, self._clock()
        self.last_error = None

    # --- the Elector interface ------------------------------------------------------------

    def contend(self, dpid):
        self._wanted.add(dpid)
        if dpid in self._held:
            self._won(dpid, self._held[dpid])
        elif self._holders.get(dpid) is None:
            self._schedule(dpid)
        elif self._holders.get(dpid) == self.node_id and dpid not in self._releasing:
            self._spawn_after(0, self._reread, dpid)   # ours, not held: what is it?
        # held by another node: its DELETE (on the watch) brings us back

    def _reread(self, dpid):
        """Read `dpid`'s master key again and act on what it says (ours on our lease:
        adopted; another's: noted; none: contended for)."""
        try:
            answer, _ = self.client.call("kv/range", {
                "key": encode(self.masters_prefix + format_dpid(dpid))})
        except StateError as err:
            self._error(f"reading switch {format_dpid(dpid)}'s master: {err}")
            self._spawn_after(RETRY_S, self._reread, dpid)
            return
        kv = (answer.get("kvs") or [None])[0]
        if kv is None:
            self._freed(dpid, int(answer["header"]["revision"]))
        else:
            self._heard(dpid, _text(kv.get("value")), kv)

    def release(self, dpid):
        self._wanted.discard(dpid)
        generation = self._held.pop(dpid, None)
        if generation is not None and self.healthy:
            self._releasing.add(dpid)
            self._spawn_after(0, self._release, dpid, generation, self.lease)

    def generation(self, dpid):
        return self._generations.get(dpid, 0)

    def describe(self):
        return {"elector": type(self).__name__, "node_id": self.node_id,
                "lease": self.lease, "healthy": self.healthy, "lease_s": self.lease_s,
                "masters": [format_dpid(dpid) for dpid in sorted(self._held)],
                "nodes": sorted(self.nodes), "last_error": self.last_error,
                "apps": self.record["apps"], "config_digest": self.record["config_digest"]}

    # --- contending ----------------------------------------------------------------------

    def _schedule(self, dpid):
        """Contend for a free switch: now when this node is the one it goes to, a moment
        later otherwise (the preferred node may not see it, or be dead)."""
        if self.healthy:   # (if not: contended anew when etcd answers again)
            self._spawn_after(0, self._contend_free, dpid)

    def _contend_free(self, dpid):
        """Decided in a green thread of its own, after the watch has handled the whole
        answer a DELETE came in (the dead holder's node record goes in the same one)."""
        first = preferred(set(self.nodes) | {self.node_id}, dpid) == self.node_id
        if first:
            self._try(dpid)
        else:
            self._spawn_after(self.spread_delay_s, self._try, dpid)

    def _try(self, dpid):
        lease = self.lease
        if not self.healthy or dpid not in self._wanted or dpid in self._held or \
                self._holders.get(dpid) is not None:
            return
        key = encode(self.masters_prefix + format_dpid(dpid))
        try:
            answer, retried = self.client.call("kv/txn", {
                "compare": [{"key": key, "target": "CREATE", "result": "EQUAL",
                             "create_revision": 0}],
                "success": [{"request_put": {"key": key, "value": encode(self.node_id),
                                             "lease": lease}}],
                "failure": [{"request_range": {"key": key}}]})
        except StateError as err:   # tried again (a lost lease: at its come-back)
            self._error(f"contending for switch {format_dpid(dpid)}: {err}")
            self._spawn_after(RETRY_S, self._try, dpid)
            return
        if answer.get("succeeded"):
            generation = int(answer["header"]["revision"])
        else:
            kv = (answer["responses"][0]["response_range"].get("kvs") or [None])[0]
            if kv is None:
                return   # freed meanwhile: the watch's DELETE brings us back
            generation = self._heard(dpid, _text(kv.get("value")), kv)
            if not (retried and self._is_ours(kv)):
                return   # another node's (or ours: _heard adopted or released it)
        if lease != self.lease or not self.healthy:
            return   # lost meanwhile: the key goes with that lease (or comes back with it)
        if dpid not in self._wanted:   # given up meanwhile: nobody else would free it
            self._spawn_after(0, self._release, dpid, generation, lease)
            return
        if self._held.get(dpid) == generation:
            return   # the watch heard our win first and adopted it
        self._generations[dpid] = max(generation, self._generations.get(dpid, 0))
        self._holders[dpid], self._held[dpid] = self.node_id, generation
        LOG.info("cluster: node %s is master of switch %s (generation %d)", self.node_id,
                 format_dpid(dpid), generation)
        self._won(dpid, generation)

    def _is_ours(self, kv):
        return _text(kv.get("value")) == self.node_id and \
            str(kv.get("lease", "")) == str(self.lease)

    def _release(self, dpid, generation, lease):
        """Delete our key of `dpid` if it is still the one we won (not a later win)."""
        key = encode(self.masters_prefix + format_dpid(dpid))
        try:
            self.client.call("kv/txn", {"compare": [
                {"key": key, "target": "VALUE", "result": "EQUAL",
                 "value": encode(self.node_id)},
                {"key": key, "target": "LEASE", "result": "EQUAL", "lease": lease},
                {"key": key, "target": "CREATE", "result": "EQUAL",
                 "create_revision": generation}],
                "success": [{"request_delete_range": {"key": key}}], "failure": []})
        except StateError as err:
            self._error(f"releasing switch {format_dpid(dpid)}: {err}")
            if self.healthy and lease == self.lease and not self.closed:
                # our lease lives on, so nobody else could ever free the key: again
                self._spawn_after(RETRY_S, self._release, dpid, generation, lease)
                return
        self._releasing.discard(dpid)   # done (or its lease is gone, and the key with it)
        if dpid in self._wanted and dpid not in self._held:   # wanted again meanwhile
            if self._holders.get(dpid) is None:      # its DELETE already heard
                self._schedule(dpid)
            elif self._holders.get(dpid) == self.node_id:   # the delete did not land
                self._spawn_after(0, self._reread, dpid)

    # --- what the watch hears ------------------------------------------------------------

    def _heard(self, dpid, holder, kv):
        """A master key as read or watched: who holds `dpid`, at which generation."""
        generation = int(kv.get("create_revision") or 0)
        self._generations[dpid] = max(generation, self._generations.get(dpid, 0))
        self._holders[dpid] = holder
        held = self._held.get(dpid)
        if held is not None and generation > held:   # ours went, another win followed
            self._lose(dpid, f"node {holder} won it at generation {generation}")
        elif held is None and self.healthy and self._is_ours(kv) and \
                dpid not in self._releasing:
            self._orphan(dpid, generation)
        return generation

    def _orphan(self, dpid, generation):
        """A master key on our live lease that this node does not hold (a win whose
        answer was lost, a contend that landed after a release): nobody else can free
        it while our lease lives, so it is taken up if the switch is wanted, else
        deleted. Otherwise the switch would have no master until this node stopped."""
        if dpid in self._wanted:
            self._held[dpid] = generation
            LOG.info("cluster: node %s is master of switch %s (generation %d, a key of "
                     "ours found on our lease)", self.node_id, format_dpid(dpid), generation)
            self._won(dpid, generation)
        else:
            self._releasing.add(dpid)
            self._spawn_after(0, self._release, dpid, generation, self.lease)

    def _freed(self, dpid, revision):
        self._holders.pop(dpid, None)
        held = self._held.get(dpid)
        if held is not None and held < revision:   # not a delete older than our win
            self._lose(dpid, "its key was deleted (our lease expired?)")
        if dpid in self._wanted and dpid not in self._held and dpid not in self._releasing:
            self._schedule(dpid)

    def _lose(self, dpid, why):
        del self._held[dpid]
        LOG.warning("cluster: node %s lost switch %s: %s", self.node_id, format_dpid(dpid),
                    why)
        self._lost(dpid)

    def _event(self, event):
        kv = event["kv"]
        revision = int(kv.get("mod_revision") or 0)
        if revision <= self._read_at:
            return   # (one revision may hold several events: a lease's keys all go at once)
        self._position = max(self._position or 0, revision)
        key = _text(kv.get("key")) or ""   # keys not of text are not ours: skipped
        if key.startswith(self.nodes_prefix):
            name = key[len(self.nodes_prefix):]
            if event.get("type") == "DELETE":
                self.nodes.pop(name, None)
            else:
                self.nodes[name] = self._node(kv)[1]
            return
        dpid = _dpid(key[len(self.masters_prefix):]) \
            if key.startswith(self.masters_prefix) else None
        if dpid is None:
            return
        if event.get("type") == "DELETE":
            self._freed(dpid, revision)
        else:
            self._heard(dpid, _text(kv.get("value")), kv)

    def resync(self):
        """Read everything under <prefix>/cluster/ (at join, after a compaction or a loss
        of etcd): the nodes, and who holds which switch. Returns the switches whose keys
        are on our lease: dpid -> generation."""
        answer, _ = self.client.call("kv/range", prefix_range(self.prefix))
        self._position = self._read_at = int(answer["header"]["revision"])
        self.nodes, holders = {}, {}
        for kv in answer.get("kvs") or ():
            key = _text(kv.get("key")) or ""   # keys not of text are not ours: skipped
            if key.startswith(self.nodes_prefix):
                name, record = self._node(kv)
                self.nodes[name] = record
            elif key.startswith(self.masters_prefix) and \
                    _dpid(key[len(self.masters_prefix):]) is not None:
                holders[_dpid(key[len(self.masters_prefix):])] = kv
        for dpid, kv in holders.items():
            self._heard(dpid, _text(kv.get("value")), kv)
        for dpid in set(self._holders) - set(holders):
            self._freed(dpid, self._position)
        for dpid in self._wanted - set(holders) - set(self._held):
            self._schedule(dpid)
        return {dpid: int(kv["create_revision"]) for dpid, kv in holders.items()
                if self._is_ours(kv)}

    def watch_once(self):
        """One watch stream from where this node was, until it ends."""
        if self._position is None:
            self.resync()
        stream = self.client.watch(self.prefix, self._position + 1,
                                   WATCH_IDLE_LEASES * self.lease_s,
                                   range_end=prefix_end(self.prefix))
        try:
            for event in stream.events(self.prefix):
                if self.closed:
                    return
                if event is None:
                    LOG.info("cluster: etcd compacted past revision %d: reading the "
                             "cluster keys whole", self._position)
                    self.resync()
                    return
                self._event(event)
        finally:
            stream.close()

    def _watch_loop(self):
        def said(err, failures):
            if err is not None and failures == 1:
                LOG.warning("cluster: watching etcd: %s; retrying", err)
        watch_forever(self.watch_once, lambda: self.closed, self._sleep, said, "cluster",
                      WATCH_PAUSE_S)

    # --- the lease ---------------------------------------------------------------------

    def keepalive_once(self):
        """One step of the lease's life: a keepalive when healthy (giving everything up
        when none succeeded for too long), else an attempt to come back. Returns how
        long to wait before the next step."""
        if not self.healthy:
            return self._come_back()
        sent = self._clock()
        if sent - self._last_ok > LOST_AFTER * self.lease_s:
            self._fall(f"no keepalive answer from etcd for {sent - self._last_ok:.1f} s "
                       f"(lease {self.lease_s} s)")
            return RETRY_S
        try:
            answer, _ = self.keepalive_client.call("lease/keepalive", {"ID": self.lease})
        except StateError as err:
            self.last_error = f"keepalive: {err}"
            return self._until_deadline(0.1)
        if int((answer.get("result") or {}).get("TTL") or 0) <= 0:
            self._fall(f"etcd says lease {self.lease} expired")
            return RETRY_S
        self._last_ok = sent   # etcd restarted the TTL no earlier than we sent it
        return self._until_deadline(self.lease_s / KEEPALIVES_PER_LEASE)

    def _until_deadline(self, pause):
        left = self._last_ok + LOST_AFTER * self.lease_s - self._clock()
        return max(0.05, min(pause, left))

    def _fall(self, why):
        """Stop writing to every switch at once: the lease may be gone soon, if not yet."""
        self.healthy, self._old_lease, self.last_error = False, self.lease, why
        held, self._held = sorted(self._held), {}
        LOG.warning("cluster: node %s: %s: giving up mastership of %d switch(es), not "
                    "writing until etcd answers again", self.node_id, why, len(held))
        for dpid in held:
            self._lost(dpid)

    def _come_back(self):
        """etcd answers again: keep the old lease if it is still alive (nobody could take
        our switches meanwhile: their keys are on it), else take a new one."""
        sent = self._clock()
        try:
            answer, _ = self.keepalive_client.call("lease/keepalive", {"ID": self._old_lease})
            if int((answer.get("result") or {}).get("TTL") or 0) > 0:
                self.lease, self.healthy, self._last_ok = self._old_lease, True, sent
                how = "its lease still alive, taking back its switches"
            else:
                self._grant()
                how = f"the old lease expired: a new one, {self.lease}"
            self._old_lease = None
            kept = self.resync()
        except (StateError, KeyError, ValueError) as err:   # no answer, or a bad one
            self.last_error = f"coming back: {err}"
            if self._old_lease is None:   # a lease taken, the read failed: keep that one
                self._old_lease = self.lease
            self.healthy = False
            return RETRY_S
        self.last_error = None
        LOG.warning("cluster: node %s: etcd answers again (%s); contending for %d "
                    "switch(es)", self.node_id, how, len(self._wanted))
        for dpid, generation in sorted(kept.items()):
            if dpid not in self._held and dpid not in self._releasing:
                self._orphan(dpid, generation)   # taken back if wanted, else let go
        return self._until_deadline(self.lease_s / KEEPALIVES_PER_LEASE)

    def _keepalive_loop(self):
        while not self.closed:
            try:
                pause = self.keepalive_once()
            except Exception:  # noqa: BLE001 -- a bug shows, the lease goes on
                LOG.exception("cluster: the keepalive failed")
                pause = RETRY_S
            self._sleep(pause)

    def _error(self, why):
        self.last_error = why
        LOG.warning("cluster: node %s: %s", self.node_id, why)

    def close(self):
        self.closed = True


def _text(value):
    """A key or value as text, None when it is not base64 of UTF-8 (not ours)."""
    try:
        return decode(value or "")
    except ValueError:   # binascii.Error and UnicodeDecodeError are ValueErrors
        return None


def _dpid(text):
    try:
        return int(text, 16) if len(text) == 16 else None
    except ValueError:
        return None


def _show(value):
    return ", ".join(value) if isinstance(value, list) else repr(value)


def process_record(data):
    """The node record's fields that come from this process: its apps (every SdnApp
    class ryu-manager loaded: all are loaded before the runtime context is built),
    their config digest, the OpenFlow address, pid and start time."""
    from ryu import cfg
    from ryu.base import app_manager
    classes = app_manager.AppManager.get_instance().applications_cls.values()
    apps = {cls.__name__: cls.APP for cls in classes if getattr(cls, "APP", None)}
    try:
        openflow = f"{cfg.CONF.ofp_listen_host or '0.0.0.0'}:{cfg.CONF.ofp_tcp_listen_port}"
    except cfg.Error:   # not ryu-manager (a test): no OpenFlow listener
        openflow = None
    return {"apps": sorted(apps), "config_digest": config_digest(data, apps.values()),
            "openflow": openflow, "pid": os.getpid(), "started": int(time.time())}
