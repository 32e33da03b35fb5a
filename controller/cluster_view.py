"""What the cluster looks like from this node: GET /v1/cluster and `sdn cluster`
(docs/cluster-view.md).

Two halves, so the view is tested without sockets:
- `read_etcd` (I/O): etcd's members and leader, asked of every configured endpoint
  (POST /v3/maintenance/status names the leader's member id; /v3/cluster/member/list
  names the members), and the keys below <prefix>/cluster/ in one range (one
  revision: node records and masters seen together). It never raises: an endpoint
  that does not answer is recorded with the cause.
- `build` (pure): the view from those facts and this node's own (`local_facts`: its
  connected switches and role on each, its elector's describe()).

The keys are the agreed layout (whoever writes them, the elector or a test):
  <prefix>/cluster/nodes/<node_id>      JSON node record, on the node's lease
  <prefix>/cluster/masters/<16 hex>     node_id of the switch's master, on its lease;
                                         the key's create_revision is the generation
A record exists while its node's lease is alive, so "healthy" is "its record exists".
"""
import collections
import functools
import json
import os
import re
import socket

from controller import config
from controller.state import StateError
from flows.dpid import format as format_dpid

NODES, MASTERS = "cluster/nodes/", "cluster/masters/"
RECORD_FORMAT = 1
_DPID = re.compile(r"[0-9a-f]{16}$")
# One GET asks every endpoint in turn: an endpoint that hangs (a paused member, a
# dropped route) must not hold the answer for etcd's whole timeout.
STATUS_TIMEOUT_S = 1.0
KEYS_TIMEOUT_S = 2.0


# --- this node ------------------------------------------------------------------------

def local_facts(runtime, data=None) -> dict:
    """What this node knows without asking anyone: its id, mode, pid, elector, and
    its role on each switch connected to it. `data`: the config (None: the file)."""
    cluster = (data if isinstance(data, dict) else {}).get("cluster")
    cluster = cluster if isinstance(cluster, dict) else None   # present: cluster mode
    elector = runtime.roles.elector.describe()
    node_id = elector.get("node_id") or (cluster or {}).get("node_id") or socket.gethostname()
    clustered = bool(runtime.roles.clustered or cluster is not None)
    switches = {}
    for entry in runtime.readiness.describe():
        dpid = int(entry["dpid"], 16)
        if runtime.roles.clustered:
            switches[dpid] = runtime.roles.describe(dpid)
        else:   # one node: master of every switch it meets, no role protocol
            switches[dpid] = {"role": "master", "may_write": True, "generation": None}
    return {"node_id": str(node_id),
            "mode": "cluster" if clustered else "single", "pid": os.getpid(),
            "apps": sorted(runtime.readiness.apps), "elector": elector,
            "switches": switches}


# --- etcd (I/O) -----------------------------------------------------------------------

def _closing(make_client, made):
    def make(url, timeout):
        client = make_client(url, timeout)
        made.append(client)
        return client
    return make


def read_etcd(settings, make_client=None) -> dict:
    """The facts `build` needs from etcd (`settings`: config.EtcdSettings). Nothing here
    raises for an etcd that does not answer: that is a fact too."""
    from controller import etcd_client   # deferred: only a node on etcd loads etcd3gw
    make_client = make_client or functools.partial(
        etcd_client.gateway_client, ca_file=settings.ca_file, cert_file=settings.cert_file,
        key_file=settings.key_file)
    made = []
    make = _closing(make_client, made)
    facts = {"prefix": settings.prefix, "endpoints": [], "members": None, "kvs": None,
             "keys_error": None}
    try:
        for url in settings.endpoints:
            # one attempt each, not the client's rotation: the cause is this endpoint's,
            # and a refused connection answers at once
            gateway = make(url, min(STATUS_TIMEOUT_S, settings.timeout_s))
            answer, cause = _ask(gateway, "maintenance/status")
            facts["endpoints"].append(_status(url, answer, cause))
            if facts["members"] is None and answer is not None:
                answer, cause = _ask(gateway, "cluster/member/list")
                if answer is not None:
                    facts["members"] = [m for m in answer.get("members") or ()
                                        if isinstance(m, dict)]
        answering = [e["url"] for e in facts["endpoints"] if e["reachable"]]
        if answering:
            keys = etcd_client.EtcdClient(answering, min(KEYS_TIMEOUT_S, settings.timeout_s),
                                          make)
            start = f"{settings.prefix}/cluster/"
            try:
                answer, _ = keys.call("kv/range", etcd_client.prefix_range(start))
                facts["kvs"] = [(etcd_client.decode(kv["key"]),
                                 etcd_client.decode(kv.get("value", "")),
                                 int(kv.get("create_revision") or 0))
                                for kv in answer.get("kvs") or ()]
            except StateError as err:
                facts["keys_error"] = str(err)
            except (KeyError, ValueError) as err:   # not base64 / UTF-8: not our keys
                facts["keys_error"] = f"a key below {start} is not what etcd stores: {err}"
    finally:
        for client in made:   # a fresh client per request: close its sockets now
            session = getattr(client, "session", None)
            if session is not None and hasattr(session, "close"):
                session.close()
    return facts


def _ask(gateway, path):
    """(etcd's answer, None) to POST /v3/`path` on one endpoint, or (None, the cause)."""
    import requests   # deferred, with etcd3gw: only a node on etcd asks
    from etcd3gw import exceptions as gateway_errors
    from controller import etcd_client
    try:
        answer = gateway.post(gateway.get_url(path), json={})
    except (gateway_errors.Etcd3Exception, requests.RequestException, ValueError) as err:
        return None, etcd_client.cause(err)
    if not isinstance(answer, dict):
        return None, f"not an etcd answer to {path}: {str(answer)[:80]!r}"
    return answer, None


def _status(url, answer, cause) -> dict:
    if answer is None:
        return {"url": url, "reachable": False, "cause": cause}
    header = answer.get("header") or {}
    return {"url": url, "reachable": True, "member_id": str(header.get("member_id", "")),
            "cluster_id": str(header.get("cluster_id", "")),
            "leader_id": str(answer.get("leader") or "0"),
            "raft_term": int(answer.get("raftTerm") or header.get("raft_term") or 0),
            "version": answer.get("version")}


# --- the view (pure) ------------------------------------------------------------------

def describe(runtime, data=None, make_client=None) -> dict:
    """GET /v1/cluster: this node's facts and etcd's, as `build` puts them. A config
    file that cannot be read now is a problem listed, not an error: the node runs."""
    problems = []
    try:
        data = config.load_file() if data is None else data
        settings = config.state_settings(data)
    except config.ConfigError as err:
        data, settings = {}, None
        problems.append(f"the config file cannot be read now ({err}): the view below "
                        f"leaves etcd out")
    local = local_facts(runtime, data)
    etcd = None
    if settings is not None and settings.backend == "etcd":
        etcd = read_etcd(settings.etcd, make_client)
    view = build(local, etcd)
    view["problems"][:0] = problems
    return view


def build(local: dict, etcd=None) -> dict:
    """The view from `local` (local_facts) and `etcd` (read_etcd's facts; None: the
    state is not on etcd). Every problem found is a sentence in "problems"."""
    problems = []
    etcd_view = None if etcd is None else _etcd_view(etcd, local, problems)
    if local["mode"] == "single":
        nodes, switches = _local_only(local, healthy=True)
    elif etcd is None:
        nodes, switches = _local_only(local, healthy=None)
        problems.append("cluster mode without state.backend etcd: the other nodes and the "
                        "masters they hold are not known here, only this node's own roles")
    elif etcd["kvs"] is None:   # etcd did not answer (the problem is listed already)
        nodes, switches = _local_only(local, healthy=None)
    else:
        nodes, switches = _from_keys(local, etcd, problems)
    return {"mode": local["mode"], "node": local["node_id"], "elector": local["elector"],
            "nodes": nodes, "switches": switches, "etcd": etcd_view, "problems": problems}


def _this_node(local, healthy, masters):
    return {"node_id": local["node_id"], "this_node": True, "healthy": healthy,
            "apps": local["apps"], "config_digest": local["elector"].get("config_digest"),
            "config_matches": True, "rest_url": None, "openflow": None,
            "pid": local["pid"], "started": None, "masters": masters}


def _local_only(local, healthy):
    """One node's own knowledge: master of what it holds as master (a single node: of
    every switch it meets)."""
    switches = [_switch(dpid, local["node_id"] if role["role"] == "master" else None,
                        role.get("generation"), role) for dpid, role in
                sorted(local["switches"].items())]
    mastered = sum(1 for entry in switches if entry["master"] is not None)
    return [_this_node(local, healthy, mastered)], switches


def _switch(dpid, master, generation, role):
    return {"dpid": f"{format_dpid(dpid)}", "master": master, "generation": generation,
            "this_node_role": role["role"] if role else None,
            "may_write": role["may_write"] if role else False}


def _parse_keys(etcd, problems):
    """(records: [(key name, record)], masters: {dpid: (node_id, generation)})."""
    base = f"{etcd['prefix']}/"
    records, masters = [], {}
    for key, value, created in etcd["kvs"]:
        name = key[len(base):] if key.startswith(base) else key
        if name.startswith(NODES):
            try:
                record = json.loads(value)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                problems.append(f"key {key} is not a JSON node record: {value[:80]!r}")
                continue
            records.append((name[len(NODES):], record))
        elif name.startswith(MASTERS):
            dpid = name[len(MASTERS):]
            if not _DPID.match(dpid):
                problems.append(f"key {key} does not name a switch (16 hex digits)")
                continue
            masters[int(dpid, 16)] = (value.strip(), created)
    return records, masters


def _record_problems(records, problems):
    by_node = collections.defaultdict(list)
    for name, record in records:
        node_id = str(record.get("node_id") or name)
        by_node[node_id].append(name)
        if node_id != name:
            problems.append(f"key {NODES}{name} holds the record of node {node_id}")
        if record.get("format") != RECORD_FORMAT:
            problems.append(f"node {node_id}'s record has format {record.get('format')!r}; "
                            f"this node reads format {RECORD_FORMAT}")
    for node_id, names in sorted(by_node.items()):
        if len(names) > 1:
            problems.append(f"{len(names)} records claim node {node_id} (keys "
                            f"{', '.join(NODES + n for n in sorted(names))}): two processes "
                            f"run with one cluster.node_id")


def _reference(local, records, problems):
    """This node's (config_digest, apps), to compare the others' with (None: unknown)."""
    own = [(name, r) for name, r in records if str(r.get("node_id") or name) ==
           local["node_id"]]
    own.sort(key=lambda item: item[0] != local["node_id"])   # its own key first
    if not own:
        problems.append(f"this node ({local['node_id']}) has no node record under "
                        f"{NODES}: its lease is not alive (or its elector has not "
                        f"registered it), so it holds no switch")
        digest, apps = local["elector"].get("config_digest"), local["elector"].get("apps")
        return None if digest is None else (digest, apps)
    record = own[0][1]
    if record.get("pid") is not None and record.get("pid") != local["pid"]:
        problems.append(f"the record of node {local['node_id']} (this node) names pid "
                        f"{record.get('pid')}, not this process ({local['pid']}): another "
                        f"process runs as {local['node_id']}, or this node's previous run "
                        f"still holds its lease")
    return record.get("config_digest"), record.get("apps")


def _from_keys(local, etcd, problems):
    records, masters = _parse_keys(etcd, problems)
    _record_problems(records, problems)
    reference = _reference(local, records, problems)
    mastered = collections.Counter(node for node, _ in masters.values())
    nodes, named = [], set()
    for name, record in sorted(records, key=lambda item: (str(item[1].get("node_id") or
                                                               item[0]), item[0])):
        node_id = str(record.get("node_id") or name)
        config_matches = None if reference is None else \
            (record.get("config_digest"), record.get("apps")) == reference
        if config_matches is False:
            problems.append(f"node {node_id}'s config differs from this node's "
                            f"({local['node_id']}): {_difference(record, reference)}; it "
                            f"should not be in this cluster until its config is the same")
        named.add(node_id)
        nodes.append({"node_id": node_id, "this_node": node_id == local["node_id"],
                      "healthy": True, "apps": record.get("apps"),
                      "config_digest": record.get("config_digest"),
                      "config_matches": config_matches, "rest_url": record.get("rest_url"),
                      "openflow": record.get("openflow"), "pid": record.get("pid"),
                      "started": record.get("started"), "masters": mastered[node_id]})
    if local["node_id"] not in named:
        nodes.append(_this_node(local, False, mastered[local["node_id"]]))
        named.add(local["node_id"])
    for node_id in sorted(set(mastered) - named):
        problems.append(f"node {node_id} is master of {mastered[node_id]} switch(es) but has "
                        f"no node record (its lease expired?)")
        nodes.append({"node_id": node_id, "this_node": False, "healthy": False,
                      "apps": None, "config_digest": None, "config_matches": None,
                      "rest_url": None, "openflow": None, "pid": None, "started": None,
                      "masters": mastered[node_id]})
    switches = []
    for dpid in sorted(set(masters) | set(local["switches"])):
        master, generation = masters.get(dpid, (None, None))
        role = local["switches"].get(dpid)
        switches.append(_switch(dpid, master, generation, role))
        name = format_dpid(dpid)
        if master is None:
            problems.append(f"switch {name} has no master (no key {MASTERS}{name}): no node "
                            f"writes to it; it keeps its flows, but nothing new is learned "
                            f"or repaired until a node wins it")
        elif role and role["role"] == "master" and master != local["node_id"]:
            problems.append(f"this node acts as master of switch {name}, but etcd names "
                            f"{master}: it must step down")
    return nodes, switches


def _difference(record, reference):
    digest, apps = reference
    said = []
    if record.get("config_digest") != digest:
        said.append(f"config_digest {record.get('config_digest')} vs {digest}")
    if record.get("apps") != apps:
        said.append(f"apps {record.get('apps')} vs {apps}")
    return ", ".join(said)


def _etcd_view(etcd, local, problems):
    endpoints = etcd["endpoints"]
    answered = [e for e in endpoints if e["reachable"]]
    failed = {e["url"].rstrip("/"): e["cause"] for e in endpoints if not e["reachable"]}
    members = etcd["members"] or []
    names = {str(m.get("ID")): m.get("name") or f"(unstarted {m.get('ID')})"
             for m in members}
    leader_id = None
    if answered:   # the newest term knows best (a member cut off may still name the old)
        newest = max(answered, key=lambda e: e["raft_term"])
        leader_id = None if newest["leader_id"] in ("", "0") else newest["leader_id"]
    answered_ids = {e["member_id"] for e in answered}
    shown = []
    for member in members:
        member_id = str(member.get("ID"))
        urls = list(member.get("clientURLs") or [])
        causes = [failed[u.rstrip("/")] for u in urls if u.rstrip("/") in failed]
        reachable = True if member_id in answered_ids else (False if causes else None)
        shown.append({"name": names[member_id], "id": member_id, "client_urls": urls,
                      "leader": member_id == leader_id, "reachable": reachable,
                      "cause": causes[0] if causes and not reachable else None})
    clusters = sorted({e["cluster_id"] for e in answered})
    if len(clusters) > 1:
        problems.append(f"state.etcd.endpoints reach {len(clusters)} etcd clusters (ids "
                        f"{', '.join(clusters)}): list the members of one cluster")
    if not answered:
        problems.append(_unreachable(local, endpoints))
    else:
        for url, cause in failed.items():
            problems.append(f"etcd endpoint {url} does not answer this node: {cause}")
        if leader_id is None:
            problems.append("etcd has no leader: no write (state, lease, mastership) can "
                            "be committed until its members elect one" + (
                                "; this node cannot renew its lease either, so it stops "
                                "writing" if local["mode"] == "cluster" else ""))
        if etcd.get("keys_error"):
            problems.append(f"etcd did not give this node the cluster keys: "
                            f"{etcd['keys_error']}")
    by_url = {url.rstrip("/"): entry["name"] for entry in shown
              for url in entry["client_urls"]}   # who a silent endpoint would have been
    return {"members": sorted(shown, key=lambda entry: entry["name"]),
            "leader": names.get(leader_id, leader_id),
            "endpoints": [{"url": e["url"], "reachable": e["reachable"],
                           "member": names.get(e.get("member_id")) or
                           by_url.get(e["url"].rstrip("/")),
                           "cause": e.get("cause")} for e in endpoints]}


def _unreachable(local, endpoints):
    causes = "; ".join(f"{e['url']}: {e['cause']}" for e in endpoints)
    if local["mode"] == "single":
        return (f"etcd is unreachable from this node ({local['node_id']}): {causes}. "
                f"REST writes fail (the state cannot be saved); the switches keep what "
                f"they have")
    writable = sum(1 for role in local["switches"].values() if role.get("may_write"))
    said = local["elector"].get("last_error")   # the elector's own words, when it has them
    return (f"etcd is unreachable from this node ({local['node_id']}): {causes}. This node "
            f"stops writing: without etcd it cannot keep its lease alive, so it holds no "
            f"switch (it may write to {writable} of {len(local['switches'])} connected "
            f"switch(es) now{'; its elector: ' + str(said) if said else ''}); the nodes and "
            f"masters shown are its own view only")
