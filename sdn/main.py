"""The `sdn` command line: arguments, dispatch to the commands, exit status."""
import argparse
import json
import os
import sys
import urllib.error

import sdn
from flows import dpid
from sdn.args import UsageError
from sdn.client import DEFAULT_URL, ApiFailure, Client
from sdn.cluster import cmd_cluster
from sdn.commands import (cmd_bond, cmd_config, cmd_lb, cmd_macs, cmd_overlay, cmd_qos,
                          cmd_switches, cmd_topology, cmd_vlan, cmd_vlans)
from sdn.dump import cmd_dump_flows
from sdn.generic import METHODS, cmd_api, cmd_routes
from sdn.planner import cmd_plan
from sdn.trace import cmd_path, cmd_trace

__all__ = ["ApiFailure", "Client", "main", "parser"]
SWITCH_HELP = "bridge name (s1) or datapath id (0000000000000001, 0x1, 1)"


def parser():
    top = argparse.ArgumentParser(prog="sdn", description=sdn.__doc__.splitlines()[0])
    top.add_argument("--url", default=os.environ.get("SDN_URL", DEFAULT_URL))
    top.add_argument("--token", default=os.environ.get("SDN_TOKEN"))
    top.add_argument("--json", action="store_true", help="print the API's JSON")
    sub = top.add_subparsers(dest="command", required=True)

    sub.add_parser("switches", help="connected switches").set_defaults(run=cmd_switches)
    p = sub.add_parser("macs", help="learned MACs of a switch")
    p.add_argument("switch", help=SWITCH_HELP)
    p.set_defaults(run=cmd_macs)

    p = sub.add_parser("vlan", help="a port's VLAN: show, set, clear")
    p.add_argument("action", choices=("show", "set", "clear"))
    p.add_argument("switch", help=SWITCH_HELP)
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
    p.add_argument("switch", nargs="?", help=SWITCH_HELP)
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
    p.add_argument("switch", nargs="?", help=SWITCH_HELP)
    p.add_argument("name", nargs="?")
    p.add_argument("--members", help="comma-separated ports of the switch")
    p.add_argument("--mode", default="active-backup",
                   choices=("active-backup", "balance-slb", "balance-tcp"))
    p.add_argument("--lacp", default="off", choices=("off", "active", "passive"))
    p.add_argument("--primary", help="active-backup: the member to prefer")
    p.set_defaults(run=cmd_bond)

    p = sub.add_parser("plan", help="the entries the apps would install on a switch for a "
                                    "config file (no controller or switch needed); with "
                                    "--delete-rule/--add-rule, the live connections a "
                                    "security change would cut (asks the controller)")
    p.add_argument("config", nargs="?", help="the YAML config file")
    p.add_argument("--delete-rule", action="append", type=int, default=[], metavar="ID",
                   help="a security rule to remove (repeatable)")
    p.add_argument("--add-rule", action="append", default=[], metavar="JSON",
                   help='a security rule to add, e.g. \'{"group": "web", "direction": '
                        '"egress", "protocol": "tcp"}\' (repeatable)')
    p.add_argument("--switch", default="s1", help="the bridge's name (default s1)")
    p.add_argument("--dpid", default="1", help=f"its datapath id: {dpid.SPELLINGS} "
                                               "(default 1)")
    p.add_argument("--ports", help="its ports: 1=s1-eth1,2=s1-eth2 (a bare number N is "
                                   "SWITCH-ethN)")
    p.add_argument("--datapath", choices=("netdev", "system"), default="netdev",
                   help="userspace (netdev) or kernel (system) datapath (QoS differs)")
    p.add_argument("--only", choices=("flows", "groups", "meters"),
                   help="print only these, as the file ovs-ofctl add-flows (diff-flows), "
                        "add-groups or add-meters reads")
    p.set_defaults(run=cmd_plan)

    p = sub.add_parser("trace", help="where a packet goes on a bridge of this host, and "
                                     "which app's entries decided it")
    p.add_argument("switch", help="bridge name or datapath id")
    p.add_argument("flow", help="as ovs-appctl ofproto/trace takes it, e.g. "
                                "'in_port=1,dl_src=...,dl_dst=...'")
    p.set_defaults(run=cmd_trace)

    p = sub.add_parser("path", help="where a packet from a switch port goes across the "
                                    "fabric, switch by switch (the controller's trace)")
    p.add_argument("switch", help="bridge name or datapath id")
    p.add_argument("port", help="the port it comes in on: number or name")
    p.add_argument("src", help="its source MAC")
    p.add_argument("dst", help="its destination MAC (ff:ff:ff:ff:ff:ff: a broadcast)")
    p.add_argument("--proto", choices=("ip", "icmp", "tcp", "udp", "arp"))
    p.add_argument("--nw-src", dest="nw_src")
    p.add_argument("--nw-dst", dest="nw_dst")
    p.add_argument("--tp-src", dest="tp_src", type=int)
    p.add_argument("--tp-dst", dest="tp_dst", type=int)
    p.add_argument("--vlan", type=int, help="it arrives tagged with this VLAN")
    p.set_defaults(run=cmd_path)

    p = sub.add_parser("dump-flows", help="a bridge's entries on this host (ovs-ofctl "
                                          "dump-flows), each labelled with the app that owns it")
    p.add_argument("switch", help="bridge name or datapath id")
    p.add_argument("--app", help="only this app's entries (e.g. vlan, or pipeline)")
    p.set_defaults(run=cmd_dump_flows)

    p = sub.add_parser("routes", help="the REST routes of every app (or of APP), from the "
                                      "controller's OpenAPI document")
    p.add_argument("app", nargs="?", help="an app, as the document tags it (e.g. bond)")
    p.set_defaults(run=cmd_routes)
    p = sub.add_parser("api", help="any REST request: METHOD PATH [JSON body]")
    p.add_argument("method", type=str.upper, choices=METHODS)
    p.add_argument("path", help="e.g. /v1/bonds (sdn routes lists them)")
    p.add_argument("body", nargs="?", help="the request body, as JSON")
    p.set_defaults(run=cmd_api)

    p = sub.add_parser("cluster", help="nodes and their health, the master of each switch, "
                                       "etcd's members and leader, problems")
    # also after the command (SUPPRESS: absent, it leaves the top-level --json alone)
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print the API's JSON")
    p.set_defaults(run=cmd_cluster)

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
