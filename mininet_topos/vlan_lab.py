"""`make lab-vlan`: the VLAN lab, run by the controller and checked frame by frame.

One bridge br0: vm100/vm101/vm102 on access ports of VLANs 101/102/103, first_br an
access port of VLAN 103, second_br a trunk of every VLAN (an empty list), third_br a
trunk of 101 and 102. tcpdump on the far ends first_if, second_if and third_if shows
which frames reach them and with which tag. Writes reports/vlan-lab.md with a drawing
of the lab (reports/vlan-lab.png).
"""
import argparse
import math
import sys

from mininet_topos import harness
from mininet_topos.labs import LabRun, pyplot, save_diagram
from mininet_topos.topos import VLAN_LAB_CONFIG, VlanLab

FAR_ENDS = ("first_if", "second_if", "third_if")
COLORS = {101: "tab:red", 102: "tab:blue", 103: "tab:green"}


def port_roles():
    """{switch port name: (label, VLAN or None)} from the lab's config."""
    roles = {"second_br": ("trunk: every VLAN", None)}
    for entry in VLAN_LAB_CONFIG["vlan"]["ports"]:
        if "tag" in entry:
            roles[entry["port"]] = (f"access {entry['tag']}", entry["tag"])
        else:
            roles[entry["port"]] = ("trunk " + ",".join(map(str, entry["trunks"])), None)
    return roles


def draw(path):
    plt = pyplot()
    roles = port_roles()
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.add_patch(plt.Rectangle((-0.45, -0.22), 0.9, 0.44, color="lightgrey", zorder=2))
    ax.text(0, 0, "br0", ha="center", va="center", fontsize=12, weight="bold", zorder=3)
    for index, (host, host_intf, switch_intf, ip) in enumerate(VlanLab.HOSTS):
        angle = math.pi / 2 - index * 2 * math.pi / len(VlanLab.HOSTS)
        x, y = 2.2 * math.cos(angle), 2.2 * math.sin(angle)
        label, vlan = roles[switch_intf]
        color = COLORS.get(vlan, "black")
        ax.plot([0, x], [0, y], color=color, linewidth=3 if vlan is None else 2,
                linestyle="--" if vlan is None else "-", zorder=1)
        ax.text(x * 0.5, y * 0.5, f"{switch_intf}\n{label}", ha="center", va="center",
                fontsize=8, color=color, backgroundcolor="white")
        ax.text(x * 1.15, y * 1.15, f"{host}\n{host_intf} {ip}", ha="center", va="center",
                fontsize=9)
    save_diagram(fig, ax, path, "VLAN lab: access ports (solid, by VLAN) and trunks (dashed)",
                 (-3.2, 3.2), (-3, 3))


def tags_seen(capture, text):
    """{far end: sorted set of tags (None = untagged)} of frames mentioning `text`."""
    return {intf: sorted(set(capture.vlans(intf, text)), key=lambda t: t or 0)
            for intf in FAR_ENDS}


def show(tags):
    return ", ".join(f"{intf}: {'/'.join('untagged' if t is None else str(t) for t in seen) or '-'}"
                     for intf, seen in tags.items())


def ping_case(lab, network, src, dst, should_reach, expected_tags):
    far_ends = [(network[name.split("_")[0]], name) for name in FAR_ENDS]
    src_host, dst_host = network[src], network[dst]
    with harness.Capture(far_ends) as capture:
        reached = harness.ping(src_host, dst_host, count=2)
    lab.check(f"ping {src} -> {dst} ({dst_host.IP()})",
              "replies" if should_reach else "no reply", "replies" if reached else "no reply",
              reached == should_reach)
    tags = tags_seen(capture, src_host.IP())
    lab.check(f"  tags of {src}'s frames at the far ends", show(expected_tags), show(tags),
              tags == expected_tags)


def run(lab, controller, network):
    lab.step("vm102 (access 103) pings first (access 103): second_if (trunk of every VLAN) "
             "sees it tagged 103, third_if (trunk 101,102) nothing")
    ping_case(lab, network, "vm102", "first", True,
              {"first_if": [None], "second_if": [103], "third_if": []})
    lab.step("vm100 (access 101) pings third (.105, on a trunk): no reply, but both trunks "
             "carry its frames tagged 101")
    ping_case(lab, network, "vm100", "third", False,
              {"first_if": [], "second_if": [101], "third_if": [101]})
    lab.step("vm101 (access 102) pings second (.104, on a trunk): no reply; tagged 102 on "
             "both trunks")
    ping_case(lab, network, "vm101", "second", False,
              {"first_if": [], "second_if": [102], "third_if": [102]})
    lab.step("REST: PUT vm101_br tag 103 moves vm101 into VLAN 103, next to first")
    status, _ = controller.rest("PUT", "/v1/switches/1/ports/vm101_br/vlan", {"tag": 103})
    lab.check("PUT /v1/switches/1/ports/vm101_br/vlan", 200, status, status == 200)
    reached = harness.wait_until(lambda: harness.ping(network["vm101"], network["first"]), 5)
    lab.check("ping vm101 -> first after the change", "replies",
              "replies" if reached else "no reply", reached)
    controller.rest("PUT", "/v1/switches/1/ports/vm101_br/vlan", {"tag": 102})
    apart = harness.wait_until(lambda: not harness.ping(network["vm101"], network["first"]), 5)
    lab.check("back to VLAN 102: vm101 -> first", "no reply",
              "no reply" if apart else "replies", apart)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("reactive", "datapath"), default="reactive")
    parser.add_argument("--reports", default="reports")
    args = parser.parse_args(argv)
    lab = LabRun("VLAN lab", "vlan-lab", args.reports)
    lab.note(f"One bridge br0, the learning app in {args.mode} mode and the VLAN app with "
             f"the lab's port settings (`VLAN_LAB_CONFIG`); tags read with tcpdump -e on "
             f"the far ends of the three `*_br` ports.")
    lab.step("starting the controller (l2_switch + vlan) and Mininet")
    config = dict(VLAN_LAB_CONFIG, l2_switch={"mode": args.mode})
    with harness.running(VlanLab(), apps=("apps/l2_switch.py", "apps/vlan.py"),
                         config=config) as (controller, network):
        harness.wait_vlans_programmed(controller, network)
        run(lab, controller, network)
        problems = controller.problems()
    draw(lab.picture("vlan-lab.png", "the VLAN lab: who is in which VLAN"))
    return lab.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
