"""`sdn cluster`: the cluster as the node at --url sees it (GET /v1/cluster): nodes and
their health, the master of each switch, etcd's members and leader, problems."""
from sdn.printing import table


def _config(node):
    if node.get("this_node"):
        return "this node"
    return {True: "same", False: "DIFFERENT", None: "?"}[node.get("config_matches")]


def _health(node):
    return {True: "yes", False: "NO", None: "?"}[node.get("healthy")]


def cmd_cluster(api, args):
    view = api.call("GET", "/v1/cluster")
    nodes = table(view["nodes"], [
        ("node", lambda n: n["node_id"] + (" *" if n.get("this_node") else "")),
        ("healthy", _health), ("config", _config), ("masters", "masters"),
        ("rest url", "rest_url"), ("pid", "pid"), ("apps", "apps")])
    switches = table(view["switches"], [
        ("switch", "dpid"), ("master", lambda s: s["master"] or "NONE"),
        ("generation", "generation"),
        ("this node", lambda s: s["this_node_role"] or "not connected")])
    parts = [f"mode: {view['mode']}, this node: {view['node']} (*)", nodes, switches]
    etcd = view.get("etcd")
    if etcd is not None:
        members = table(etcd["members"], [
            ("member", "name"), ("id", "id"), ("leader", "leader"),
            ("reachable", lambda m: {True: "yes", False: "NO", None: "?"}[m["reachable"]]),
            ("client urls", "client_urls"), ("cause", "cause")])
        parts.append(f"etcd leader: {etcd.get('leader') or 'NONE'}\n{members}")
    problems = view.get("problems") or []
    parts.append("problems: none" if not problems else
                 "problems:\n" + "\n".join(f"  - {p}" for p in problems))
    return view, "\n\n".join(parts)
