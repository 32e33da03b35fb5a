"""The commands that talk to the controller: each takes the API client and the parsed
arguments and returns (data for --json, text for people)."""
import json
from urllib.parse import quote

from sdn.args import UsageError, fields, id_list
from sdn.printing import table


def _switch(args):
    """The command's switch as a path segment: the controller resolves it (a bridge name
    or a datapath id in any spelling; its 400/404/409 say what is wrong)."""
    return quote(args.switch, safe="")


def cmd_switches(api, args):
    rows = api.call("GET", "/v1/switches")
    return rows, table(rows, [("dpid", "dpid"), ("name", "name"), ("mode", "mode"),
                              ("macs", "macs"),
                              ("max", "max_macs"), ("packet-ins", "packet_ins"),
                              ("not learned", "not_learned"),
                              ("bans", lambda r: len(r.get("bans") or []))])


def cmd_macs(api, args):
    rows = api.call("GET", f"/v1/switches/{_switch(args)}/macs")
    return rows, table(rows, [("mac", "mac"), ("port", "port"), ("vlan", "vlan"),
                              ("age s", "age_s")])


def _vlan_row(row):
    return table([row], [("dpid", "dpid"), ("port", "port"), ("name", "name"),
                         ("mode", "mode"), ("tag", "tag"),
                         ("trunks", lambda r: r.get("trunks") or ("all" if r.get("mode") ==
                                                                  "trunk" else None)),
                         ("configured", "configured")])


def cmd_vlan(api, args):
    path = f"/v1/switches/{_switch(args)}/ports/{args.port}/vlan"
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
            row = api.call("GET", f"/v1/qos/{_switch(args)}/{args.port}")
            return row, _qos_port_rows([row])
        switches = api.call("GET", "/v1/qos")
        if args.switch:
            wanted = api.call("GET", f"/v1/runtime/switches/{_switch(args)}")["dpid"]
            switches = [s for s in switches if s["dpid"] == wanted]
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
        row = api.call("PUT", f"/v1/qos/{_switch(args)}/{args.port}", body)
        return row, _qos_port_rows([row])
    if args.action == "clear":
        row = api.call("DELETE", f"/v1/qos/{_switch(args)}/{args.port}")
        return row, _qos_port_rows([row])
    if args.action == "rules":
        rules = api.call("GET", f"/v1/qos/{_switch(args)}/rules")
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
        rule = api.call("POST", f"/v1/qos/{_switch(args)}/rules", body)
        return rule, _rule_rows([rule])
    rule = api.call("DELETE", f"/v1/qos/{_switch(args)}/rules/{args.port}")
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
    path = f"/v1/bonds/{_switch(args)}/{args.name}"
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


def cmd_config(api, args):
    status = api.call("POST", "/v1/config/reload") if args.reload \
        else api.call("GET", "/v1/config")
    text = (f"file: {status.get('file') or '(none: defaults)'}\nreloads: {status['reloads']}\n"
            f"last reload: {'ok' if status['ok'] else 'refused: ' + status['last_error']}")
    return status, text
