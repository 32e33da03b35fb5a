"""`sdn`: the controller's REST API from a shell, in the spirit of ovs-vsctl/ovs-ofctl.

    sdn switches                          sdn macs SWITCH
    sdn vlan show SWITCH PORT             sdn vlan set SWITCH PORT --tag 101
    sdn vlan set SWITCH PORT --trunks 101,102
    sdn vlan clear SWITCH PORT
    sdn vlans                             sdn topology
    sdn qos show [SWITCH [PORT]]          sdn qos set SWITCH PORT --max-rate 10M --queue 0:3M
    sdn qos rules SWITCH                  sdn qos rule-add SWITCH --match udp_dst=5001 --to-queue 1
    sdn lb                                sdn lb add --vip 10.0.0.100 --port 80 --backend IP:PORT
    sdn overlay                           sdn config [--reload]
    sdn bond set SWITCH NAME --members A,B --mode balance-slb --lacp active
    sdn trace SWITCH 'in_port=1,dl_src=...,dl_dst=...'
    sdn plan CONFIG.yaml --switch br0 --dpid 1 --ports 1=vm1,2=vm2,3=uplink

Human-readable tables by default, `--json` for scripts. The controller is at
`--url` (default $SDN_URL or http://127.0.0.1:8080); `--token` (or $SDN_TOKEN) is
sent as a bearer token. An error from the API is printed as it came, and the exit
status is 1 (2 for a command line the CLI itself refuses, 3 when the controller
cannot be reached).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import warnings

# Ryu imports eventlet, which warns on import that it is deprecated: noise in a CLI
warnings.filterwarnings("ignore", message="Eventlet is deprecated")
from controller import config, pipeline, plan  # noqa: E402
from flows import dpid  # noqa: E402

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


# --- tables ------------------------------------------------------------------------------

def table(rows, columns):
    """Rows (dicts) as aligned text columns; `columns` are (heading, key or function)."""
    cells = [[_cell(row, key) for _, key in columns] for row in rows]
    widths = [max([len(heading)] + [len(c[i]) for c in cells])
              for i, (heading, _) in enumerate(columns)]
    lines = ["  ".join(h.upper().ljust(w) for (h, _), w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines)


def _cell(row, key):
    value = key(row) if callable(key) else row.get(key)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def fields(text_items, what):
    """["k=v", ...] -> {k: v} with numbers as ints."""
    out = {}
    for item in text_items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what}: expected field=value, not {item!r}")
        out[key] = int(value) if value.isdigit() else value
    return out


def id_list(text):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"expected comma-separated VLAN ids, not {text!r}") from None


class UsageError(Exception):
    pass


# --- commands: each returns (data for --json, text for people) ----------------------------

def cmd_switches(api, args):
    rows = api.call("GET", "/v1/switches")
    return rows, table(rows, [("dpid", "dpid"), ("mode", "mode"), ("macs", "macs"),
                              ("max", "max_macs"), ("packet-ins", "packet_ins"),
                              ("not learned", "not_learned"),
                              ("bans", lambda r: len(r.get("bans") or []))])


def cmd_macs(api, args):
    rows = api.call("GET", f"/v1/switches/{args.switch}/macs")
    return rows, table(rows, [("mac", "mac"), ("port", "port"), ("vlan", "vlan"),
                              ("age s", "age_s")])


def _vlan_row(row):
    return table([row], [("dpid", "dpid"), ("port", "port"), ("name", "name"),
                         ("mode", "mode"), ("tag", "tag"),
                         ("trunks", lambda r: r.get("trunks") or ("all" if r.get("mode") ==
                                                                  "trunk" else None)),
                         ("configured", "configured")])


def cmd_vlan(api, args):
    path = f"/v1/switches/{args.switch}/ports/{args.port}/vlan"
    if args.action == "show":
        row = api.call("GET", path)
    elif args.action == "clear":
        row = api.call("DELETE", path)
    else:
        if (args.tag is None) == (args.trunks is None):
            raise UsageError("vlan set: give --tag N (access port) or --trunks A,B (trunk; "
                             "--trunks '' for every VLAN)")
        body = {"tag": args.tag} if args.tag is not None else {"trunks": id_list(args.trunks)}
        if args.native_mode:
            body["native_mode"] = args.native_mode
        row = api.call("PUT", path, body)
    return row, _vlan_row(row)


def cmd_vlans(api, args):
    members = api.call("GET", "/v1/vlans")
    rows = [dict(m, vlan=int(vid)) for vid, ms in sorted(members.items(), key=lambda i: int(i[0]))
            for m in ms]
    return members, table(rows, [("vlan", lambda r: r["vlan"] or "untagged"), ("dpid", "dpid"),
                                 ("port", "port"), ("name", "name"), ("tagged", "tagged")])


def cmd_topology(api, args):
    view = api.call("GET", "/v1/topology")
    links = table(view["links"], [
        ("a", lambda l: f"{l['a']['dpid']}:{l['a']['port']}"),
        ("b", lambda l: f"{l['b']['dpid']}:{l['b']['port']}"),
        ("flood tree", "in_tree")])
    ports = [dict(p, dpid=s["dpid"]) for s in view["switches"] for p in s["ports"]]
    roles = table(ports, [("dpid", "dpid"), ("port", "port"), ("name", "name"),
                          ("role", "role")])
    hosts = table(view.get("hosts", []), [("mac", "mac"), ("vlan", "vlan"), ("dpid", "dpid"),
                                          ("port", "port")])
    return view, f"root: {view.get('root') or '-'}\n\n{links}\n\n{roles}\n\n{hosts}"


def _qos_port_rows(ports):
    return table(ports, [("dpid", "dpid"), ("port", "port"), ("name", "name"),
                         ("max rate", "max_rate"),
                         ("queues", lambda r: " ".join(
                             f"{q}:{c.get('min_rate', '-')}/{c.get('max_rate', '-')}"
                             for q, c in sorted((r.get("queues") or {}).items())) or None),
                         ("policing", lambda r: (r.get("ingress_policing") or {}).get("rate"))])


def _rule_rows(rules):
    return table(rules, [("id", "id"), ("priority", "priority"),
                         ("match", lambda r: " ".join(f"{k}={v}" for k, v in r["match"].items())),
                         ("queue", "queue"), ("port", "port"),
                         ("meter", lambda r: (r.get("meter") or {}).get("rate"))])


def cmd_qos(api, args):
    if args.action == "show":
        if args.switch and args.port:
            row = api.call("GET", f"/v1/qos/{args.switch}/{args.port}")
            return row, _qos_port_rows([row])
        switches = api.call("GET", "/v1/qos")
        if args.switch:
            wanted = _dpid(args.switch)
            switches = [s for s in switches if dpid.parse(s["dpid"]) == wanted]
        text = []
        for s in switches:
            text.append(f"switch {s['dpid']} ({s.get('datapath')} datapath): "
                        f"{len(s['ports'])} QoS ports, {len(s['rules'])} rules")
            text += [_qos_port_rows(s["ports"]), _rule_rows(s["rules"])]
            text += [f"problem: {p}" for p in s.get("problems") or ()]
        return switches, "\n".join(text)
    if args.action == "set":
        body = {}
        if args.max_rate:
            body["max_rate"] = args.max_rate
            body["queues"] = {}
            for item in args.queue_spec or ():
                queue, _, rates = item.partition(":")
                low, _, high = rates.partition("/")
                body["queues"][queue] = {k: v for k, v in (("min_rate", low),
                                                           ("max_rate", high)) if v}
        if args.police:
            rate, _, burst = args.police.partition("/")
            body["ingress_policing"] = {"rate": rate, **({"burst": burst} if burst else {})}
        if not body:
            raise UsageError("qos set: give --max-rate (with --queue Q:MIN[/MAX]...) and/or "
                             "--police RATE[/BURST]")
        row = api.call("PUT", f"/v1/qos/{args.switch}/{args.port}", body)
        return row, _qos_port_rows([row])
    if args.action == "clear":
        row = api.call("DELETE", f"/v1/qos/{args.switch}/{args.port}")
        return row, _qos_port_rows([row])
    if args.action == "rules":
        rules = api.call("GET", f"/v1/qos/{args.switch}/rules")
        return rules, _rule_rows(rules)
    if args.action == "rule-add":
        body = {"match": fields(args.match, "--match")}
        for key, value in (("queue", args.to_queue), ("priority", args.priority),
                           ("id", args.id)):
            if value is not None:
                body[key] = value
        if args.out_port:
            body["port"] = args.out_port
        if args.meter:
            body["meter"] = {"rate": args.meter}
        rule = api.call("POST", f"/v1/qos/{args.switch}/rules", body)
        return rule, _rule_rows([rule])
    rule = api.call("DELETE", f"/v1/qos/{args.switch}/rules/{args.port}")
    return rule, _rule_rows([rule])


def _vip_rows(vips):
    rows = [dict(b, vip_id=v["id"], vip=f"{v['vip']}:{v['port']}/{v['protocol']}", mode=v["mode"])
            for v in vips for b in v["backends"]]
    return table(rows, [("id", "vip_id"), ("vip", "vip"), ("mode", "mode"),
                        ("backend", lambda b: f"{b['ip']}:{b['port']}"), ("weight", "weight"),
                        ("healthy", "healthy"), ("packets", "packets")])


def cmd_lb(api, args):
    if args.action == "show":
        vips = [api.call("GET", f"/v1/lb/vips/{args.vip_id}/stats")] if args.vip_id \
            else api.call("GET", "/v1/lb/vips")
        return vips, _vip_rows(vips)
    if args.action == "add":
        backends = []
        for item in args.backend or ():
            ip, _, port = item.partition(":")
            backends.append({"ip": ip, **({"port": int(port)} if port else {})})
        body = {"vip": args.vip, "port": args.port, "protocol": args.protocol,
                "mode": args.mode, "backends": backends}
        vip = api.call("POST", "/v1/lb/vips", body)
        return vip, _vip_rows([vip])
    if args.action == "delete":
        result = api.call("DELETE", f"/v1/lb/vips/{args.vip_id}")
        return result, f"deleted VIP {result['deleted']}"
    path = f"/v1/lb/vips/{args.vip_id}/backends/{args.ip}"
    vip = api.call("POST" if args.action == "backend-add" else "DELETE", path)
    return vip, _vip_rows([vip])


def cmd_overlay(api, args):
    if args.action == "show":
        view = api.call("GET", "/v1/overlay")
        hvs = table(view["hypervisors"], [
            ("hypervisor", "name"), ("underlay", "underlay_ip"),
            ("int", lambda h: "%x" % h["int_dpid"] if isinstance(h.get("int_dpid"), int)
             else h.get("int_dpid")),
            ("tun", lambda h: "%x" % h["tun_dpid"] if isinstance(h.get("tun_dpid"), int)
             else h.get("tun_dpid")),
            ("programmed", "programmed"), ("problem", "problem")])
        nets = table(view["networks"], [("vni", "vni"), ("name", "name"),
                                        ("tunnel", "tunnel_type"), ("hosts", "hosts")])
        ports = table(view["ports"], [("hypervisor", "hypervisor"), ("port", "port"),
                                      ("vni", "vni")])
        return view, f"tunnels: {view['tunnel_type']}, l2 population: " \
                     f"{'on' if view.get('l2_population') else 'off'}\n\n{hvs}\n\n{nets}\n\n{ports}"
    kind, verb = args.action.split("-")
    if verb == "add":
        body = fields(args.key, f"overlay {args.action}")
        result = api.call("POST", f"/v1/overlay/{kind}s", body)
    else:
        result = api.call("DELETE", f"/v1/overlay/{kind}s/{'/'.join(args.key)}")
    return result, json.dumps(result, indent=1, sort_keys=True)


def cmd_bond(api, args):
    if args.action == "show":
        bonds = api.call("GET", "/v1/bonds")
        return bonds, table(bonds, [("dpid", "dpid"), ("bridge", "bridge"), ("bond", "name"),
                                    ("members", "members"), ("mode", "mode"), ("lacp", "lacp"),
                                    ("primary", "primary")])
    if not (args.switch and args.name):
        raise UsageError(f"bond {args.action}: give SWITCH and NAME")
    path = f"/v1/bonds/{args.switch}/{args.name}"
    if args.action == "delete":
        result = api.call("DELETE", path)
        return result, f"deleted bond {result['deleted']}"
    if not args.members:
        raise UsageError("bond set: give --members A,B")
    body = {"members": args.members.split(","), "mode": args.mode, "lacp": args.lacp}
    if args.primary:
        body["primary"] = args.primary
    row = api.call("PUT", path, body)
    return row, table([row], [("dpid", "dpid"), ("bond", "name"), ("members", "members"),
                              ("mode", "mode"), ("lacp", "lacp")])


def cmd_plan(api, args):
    """No controller needed: the config file through the apps' flows/ functions."""
    try:
        data = config.load_file(args.config)
        ports = {}
        for item in filter(None, (args.ports or "").split(",")):
            number, _, name = item.partition("=")
            ports[int(number)] = name or f"{args.switch}-eth{number}"
        switch = plan.planned_switch(args.switch, dpid.parse(args.dpid), ports)
        result = plan.plan(data, switch, args.datapath)
    except (config.ConfigError, ValueError) as err:
        raise UsageError(f"plan: {err}") from None
    data = {"apps": {app: [plan.describe(i) for i in items]
                     for app, items in result["apps"].items()},
            "ovsdb": result["ovsdb"], "problems": result["problems"],
            "not_planned": result["not_planned"]}
    lines = []
    for app, items in data["apps"].items():
        lines += [f"# {app}: {len(items)} entries"] + items + [""]
    if data["ovsdb"]:
        lines += ["# OVSDB"] + data["ovsdb"] + [""]
    lines += [f"problem: {p}" for p in data["problems"]]
    lines += [f"not planned: {app} ({why})" for app, why in data["not_planned"].items()]
    return data, "\n".join(lines).rstrip()


def cmd_config(api, args):
    status = api.call("POST", "/v1/config/reload") if args.reload \
        else api.call("GET", "/v1/config")
    text = (f"file: {status.get('file') or '(none: defaults)'}\nreloads: {status['reloads']}\n"
            f"last reload: {'ok' if status['ok'] else 'refused: ' + status['last_error']}")
    return status, text


_COOKIE = re.compile(r"cookie (0x[0-9a-f]+)")


def cmd_trace(api, args):
    """ovs-appctl ofproto/trace on this host, each rule it went through named by the app
    (and purpose) whose cookie it carries."""
    bridge = _bridge_of(args.switch)
    result = subprocess.run(["ovs-appctl", "ofproto/trace", bridge, args.flow],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise UsageError(f"trace: {(result.stderr or result.stdout).strip()}")
    lines, decided_by = [], []
    for line in result.stdout.splitlines():
        found = _COOKIE.search(line)
        owner = pipeline.owner_of(int(found.group(1), 16)) if found else None
        if found:
            name = "not ours" if owner is None else \
                "/".join(str(p) for p in (owner.app, owner.purpose) if p)
            decided_by.append({"rule": line.strip(), "owner": name})
            line = f"{line}    <- {name}"
        lines.append(line)
    return {"bridge": bridge, "flow": args.flow, "rules": decided_by,
            "output": result.stdout}, "\n".join(lines)


def _bridge_of(switch):
    """A bridge name as given, or the bridge whose datapath id is `switch`."""
    number = dpid.of_ref(switch)
    if number is None:
        return switch
    found = subprocess.run(["ovs-vsctl", "--bare", "--columns=name", "find", "Bridge",
                            f"datapath_id={dpid.format(number)}"], capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.strip():
        raise UsageError(f"trace: no bridge with datapath id {dpid.format(number)} on this host")
    return found.stdout.split()[0]


def _dpid(text):
    """A datapath id in the spellings of flows/dpid.py (those REST and config take)."""
    try:
        return dpid.parse(text)
    except dpid.DpidError as err:
        raise UsageError(str(err)) from None


# --- the command line ----------------------------------------------------------------------

def parser():
    top = argparse.ArgumentParser(prog="sdn", description=__doc__.splitlines()[0])
    top.add_argument("--url", default=os.environ.get("SDN_URL", DEFAULT_URL))
    top.add_argument("--token", default=os.environ.get("SDN_TOKEN"))
    top.add_argument("--json", action="store_true", help="print the API's JSON")
    sub = top.add_subparsers(dest="command", required=True)

    sub.add_parser("switches", help="connected switches").set_defaults(run=cmd_switches)
    p = sub.add_parser("macs", help="learned MACs of a switch")
    p.add_argument("switch")
    p.set_defaults(run=cmd_macs)

    p = sub.add_parser("vlan", help="a port's VLAN: show, set, clear")
    p.add_argument("action", choices=("show", "set", "clear"))
    p.add_argument("switch")
    p.add_argument("port")
    p.add_argument("--tag", type=int, help="access port of this VLAN")
    p.add_argument("--trunks", help="trunk of these VLANs (comma-separated; '' = every VLAN)")
    p.add_argument("--native-mode", choices=("native-tagged", "native-untagged"))
    p.set_defaults(run=cmd_vlan)
    sub.add_parser("vlans", help="members of every VLAN").set_defaults(run=cmd_vlans)
    sub.add_parser("topology", help="links, flood tree, port roles, hosts") \
        .set_defaults(run=cmd_topology)

    p = sub.add_parser("qos", help="QoS: show, set, clear, rules, rule-add, rule-delete")
    p.add_argument("action", nargs="?", default="show",
                   choices=("show", "set", "clear", "rules", "rule-add", "rule-delete"))
    p.add_argument("switch", nargs="?")
    p.add_argument("port", nargs="?", help="a port (set/clear/show) or a rule id (rule-delete)")
    p.add_argument("--max-rate")
    p.add_argument("--queue", dest="queue_spec", action="append",
                   help="set: Q:MIN[/MAX], e.g. 1:3M/10M (repeat per queue)")
    p.add_argument("--police", help="RATE[/BURST] ingress policing")
    p.add_argument("--match", action="append", help="rule-add: field=value (repeat)")
    p.add_argument("--to-queue", type=int, help="rule-add: the queue")
    p.add_argument("--out-port", help="rule-add: the port whose queue it is")
    p.add_argument("--priority", type=int)
    p.add_argument("--id", type=int)
    p.add_argument("--meter", help="rule-add: a meter rate, e.g. 2M")
    p.set_defaults(run=cmd_qos)

    p = sub.add_parser("lb", help="load balancer: show, add, delete, backend-add, "
                                  "backend-delete")
    p.add_argument("action", nargs="?", default="show",
                   choices=("show", "add", "delete", "backend-add", "backend-delete"))
    p.add_argument("vip_id", nargs="?")
    p.add_argument("ip", nargs="?", help="backend-add/-delete: the backend's IP")
    p.add_argument("--vip")
    p.add_argument("--port", type=int)
    p.add_argument("--protocol", default="tcp", choices=("tcp", "udp"))
    p.add_argument("--mode", default="nat", choices=("nat", "dsr"))
    p.add_argument("--backend", action="append", help="IP[:PORT]")
    p.set_defaults(run=cmd_lb)

    p = sub.add_parser("overlay", help="overlay: show, {hypervisor,network,port}-{add,delete}")
    p.add_argument("action", nargs="?", default="show",
                   choices=("show", "hypervisor-add", "hypervisor-delete", "network-add",
                            "network-delete", "port-add", "port-delete"))
    p.add_argument("key", nargs="*", help="add: field=value ...; delete: NAME, VNI or HV PORT")
    p.set_defaults(run=cmd_overlay)

    p = sub.add_parser("bond", help="bonds: show, set, delete")
    p.add_argument("action", nargs="?", default="show", choices=("show", "set", "delete"))
    p.add_argument("switch", nargs="?")
    p.add_argument("name", nargs="?")
    p.add_argument("--members", help="comma-separated ports of the switch")
    p.add_argument("--mode", default="active-backup",
                   choices=("active-backup", "balance-slb", "balance-tcp"))
    p.add_argument("--lacp", default="off", choices=("off", "active", "passive"))
    p.add_argument("--primary", help="active-backup: the member to prefer")
    p.set_defaults(run=cmd_bond)

    p = sub.add_parser("plan", help="the entries the apps would install on a switch for a "
                                    "config file (no controller or switch needed)")
    p.add_argument("config", help="the YAML config file")
    p.add_argument("--switch", default="s1", help="the bridge's name (default s1)")
    p.add_argument("--dpid", default="1", help=f"its datapath id: {dpid.SPELLINGS} "
                                               "(default 1)")
    p.add_argument("--ports", help="its ports: 1=s1-eth1,2=s1-eth2 (a bare number N is "
                                   "SWITCH-ethN)")
    p.add_argument("--datapath", choices=("netdev", "system"), default="netdev",
                   help="userspace (netdev) or kernel (system) datapath (QoS differs)")
    p.set_defaults(run=cmd_plan)

    p = sub.add_parser("trace", help="where a packet goes on a bridge of this host, and "
                                     "which app's entries decided it")
    p.add_argument("switch", help="bridge name or datapath id")
    p.add_argument("flow", help="as ovs-appctl ofproto/trace takes it, e.g. "
                                "'in_port=1,dl_src=...,dl_dst=...'")
    p.set_defaults(run=cmd_trace)

    p = sub.add_parser("config", help="the config file's status; --reload reads it again")
    p.add_argument("--reload", action="store_true")
    p.set_defaults(run=cmd_config)
    return top


def main(argv=None, out=sys.stdout, err=sys.stderr):
    args = parser().parse_args(argv)
    api = Client(args.url, args.token)
    try:
        data, text = args.run(api, args)
    except UsageError as problem:
        print(f"sdn: {problem}", file=err)
        return 2
    except ApiFailure as failure:
        print(f"sdn: {failure.message} (HTTP {failure.status})", file=err)
        return 1
    except (urllib.error.URLError, OSError) as problem:
        reason = getattr(problem, "reason", problem)
        print(f"sdn: cannot reach the controller at {args.url}: {reason}", file=err)
        return 3
    print(json.dumps(data, indent=1, sort_keys=True) if args.json else text, file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
