"""Directed egress: how a table before the forwarding stage says "this frame leaves by
port P" without sending it there itself.

A frame leaves the switch only from the egress tables (`l2_dst`, `flood`), because
that is where the duties of the last stage are done: the VLAN app pops the internal
tag for ports the frame leaves untagged and keeps a VLAN's frames off ports that do
not carry it. An earlier table that outputs directly skips all of that (issue 16,
2b: a QoS rule's `output:P` sent frames to an access port still tagged, and frames
of other VLANs to P at all). So an earlier table writes the port into OUT_PORT and
goes on; the entries here carry it through:

- `l2_dst`, REDIRECT_PRIORITY (above learned hosts): OUT_PORT = P -> goto flood;
- `flood`, VLAN_PRIORITY / VLAN_DENY_PRIORITY (flows/vlan.py, directed_egress): the
  VLANs P carries leave P as P's VLAN mode says, every other frame is dropped;
- `flood`, FALLBACK_PRIORITY (below the VLAN app's): without the VLAN app the frame
  leaves P as it is.
Registers start at 0 for every packet, and 0 is no port, so frames nobody directed
never match these entries.
"""
from typing import List

from flows.spec import FlowSpec, Match, Output, Owner, SetField

OUT_PORT = "reg1"           # reg0: the load balancer's backend mark; reg2: the router's
REDIRECT_PRIORITY = 1000    # l2_dst: above learned hosts (100) and the flood guard (2, 3)
VLAN_PRIORITY = 40          # flood: the VLAN app's directed entries, per (port, VLAN)
VLAN_TAGGED_PRIORITY = 35   # flood: a trunk of every VLAN, whatever the VLAN
VLAN_DENY_PRIORITY = 30     # flood: a directed frame of a VLAN the port does not carry
FALLBACK_PRIORITY = 20      # flood: no VLAN app; above every plain flood entry (<= 10)
MAX_PORT = 0xFFFFFF00       # OpenFlow's highest physical port number (OFPP_MAX)


def direct_to(port: int) -> SetField:
    """The action that directs a frame to `port` (instead of Output(port))."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= MAX_PORT:
        raise ValueError(f"a directed port must be a port number 1..{MAX_PORT}, not {port!r}")
    return SetField(OUT_PORT, port)


def directed(port: int, **more) -> Match:
    return Match.of(**{OUT_PORT: port}, **more)


def redirect_and_fallback(owner: Owner, port: int) -> List[FlowSpec]:
    """What the app that directs frames to `port` installs: the l2_dst redirect (past
    learned destinations, to the flood stage) and the plain fallback output there."""
    direct_to(port)   # checks the number
    return [FlowSpec("l2_dst", REDIRECT_PRIORITY, directed(port), owner, goto="flood"),
            FlowSpec("flood", FALLBACK_PRIORITY, directed(port), owner,
                     actions=(Output(port),))]
