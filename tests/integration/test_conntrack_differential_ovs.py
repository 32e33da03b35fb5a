"""Differential test: the table simulator's conntrack model (tests/support/conntrack.py)
against real OVS (userspace datapath). The same lab pipelines (tests/support/ctlab.py),
compiled by the project's compiler, run on both; the same packet sequences go through
both: real UDP datagrams and TCP connections between two network namespaces on OVS,
their header dicts in the simulator. Compared, step by step: delivered or dropped, and
the addresses the receiver sees (NAT); then, per scenario, how many packets each flow
matched (so each packet's ct_state decided the same flow) and the connection table
(ovs-appctl dpctl/dump-conntrack against the model's entries).
"""
import socket

import pytest

from tests.support import ctlab, ctnet
from tests.support.ctlab import (CLIENT, CLIENT2, ECHO_PORT, FLOATING_IP, HTTP, INSIDE,
                                 MARKED_PORT, OUTSIDE, SERVER, SNAT_IP)

pytestmark = pytest.mark.integration
SYN, SYN_ACK, ACK = 0x02, 0x12, 0x10
# sockets of the scenarios: name -> (port of its namespace, address, UDP port)
SOCKETS = {"client": (INSIDE, CLIENT, 40000), "client2": (INSIDE, CLIENT2, 40000),
           "client_b": (INSIDE, CLIENT, 40001), "server": (OUTSIDE, SERVER, ECHO_PORT),
           "marked": (OUTSIDE, SERVER, MARKED_PORT), "stranger": (OUTSIDE, SERVER, 6000),
           "victim": (INSIDE, CLIENT, 6000), "remote": (OUTSIDE, SERVER, 41000),
           "fixed": (INSIDE, CLIENT, ECHO_PORT)}
BOUND_PORTS = {p for _, _, p in SOCKETS.values()}

# (sender, destination (address, port) or "seen:N": the source step N's receiver saw,
#  the socket that should receive it)
FIREWALL = [("client", (SERVER, ECHO_PORT), "server"),     # new: committed
            ("client", (SERVER, ECHO_PORT), "server"),     # again before any reply
            ("server", (CLIENT, 40000), "client"),         # the reply
            ("client", (SERVER, ECHO_PORT), "server"),     # established
            ("stranger", (CLIENT, 6000), "victim"),        # new from outside: dropped
            ("client_b", (SERVER, MARKED_PORT), "marked"),  # committed with mark 1
            ("marked", (CLIENT, 40001), "client_b")]       # its reply: cut by the mark
SNAT = [("client", (SERVER, ECHO_PORT), "server"),
        ("server", "seen:0", "client"),
        ("client2", (SERVER, ECHO_PORT), "server"),         # same source port
        ("server", "seen:2", "client2"),
        ("client", (SERVER, ECHO_PORT), "server")]
FLOATING = [("remote", (FLOATING_IP, ECHO_PORT), "fixed"),
            ("fixed", (SERVER, 41000), "remote"),
            ("remote", (CLIENT, ECHO_PORT), "fixed")]      # the fixed IP itself: dropped
TWO_ZONES = [("client", (SERVER, ECHO_PORT), "server"),
             ("server", (CLIENT, 40000), "client"),
             ("client", (SERVER, ECHO_PORT), "server"),
             ("client", (SERVER, ECHO_PORT), "server")]
SCENARIOS = {   # name -> (pipeline, steps, zones)
    "firewall": (ctlab.firewall(), FIREWALL, (ctlab.FIREWALL_ZONE,)),
    "snat": (ctlab.snat(), SNAT, (ctlab.SNAT_ZONE,)),
    "snat_port_range": (ctlab.snat(ports=(50000, 50001)), SNAT[:4], (ctlab.SNAT_ZONE,)),
    "floating_ip": (ctlab.floating_ip(), FLOATING, (ctlab.FIP_ZONE,)),
    "two_zones_ct_clear": (ctlab.rezoned(3, 4), TWO_ZONES, (3, 4)),
    "two_zones_no_clear": (ctlab.rezoned(3, 4, clear=False), TWO_ZONES, (3, 4)),
}


def _target(dst, seen):
    """The destination of a step (None: it answers a step whose packet was lost)."""
    if not isinstance(dst, str):
        return dst
    earlier = seen[int(dst[5:])]
    return None if earlier is None else earlier[1]


def _shown(observation):
    """An observation with ports NAT allocated (no socket's own) shown as "allocated":
    which free port a translation takes is OVS's hash, not the model's business."""
    if observation is None:
        return None
    port, (ip, sport) = observation
    return port, (ip, sport if sport in BOUND_PORTS else "allocated")


def run_simulated(specs, steps):
    """[(receiving port, source it saw) or None] per step, and the switch."""
    sw, seen = ctlab.switch(specs), []
    for sender, dst, receiver in steps:
        port, ip, sport = SOCKETS[sender]
        if _target(dst, seen) is None:
            seen.append(None)
            continue
        dst_ip, dst_port = _target(dst, seen)
        out = ctlab.delivered(sw, ctlab.udp(port, ip, sport, dst_ip, dst_port))
        want = SOCKETS[receiver]
        arrived = out is not None and out[0] == want[0] and \
            ctlab.address(out[1], "dst") == want[1:]
        seen.append((out[0], ctlab.address(out[1], "src")) if arrived else None)
    return seen, sw


def run_on_ovs(lab, specs, steps, zones):
    for zone in zones:
        ctnet.flush(zone)
    lab.channel.install(specs)
    names = {name for step in steps for name in (step[0], step[2])}
    socks = {name: lab.socket(lab.inside if SOCKETS[name][0] == INSIDE else lab.outside,
                              socket.SOCK_DGRAM, SOCKETS[name][1:]) for name in names}
    seen = []
    try:
        for n, (sender, dst, receiver) in enumerate(steps):
            target = _target(dst, seen)
            if target is None:
                seen.append(None)
                continue
            socks[sender].sendto(b"step %d" % n, target)
            try:
                _, source = socks[receiver].recvfrom(100)
                seen.append((SOCKETS[receiver][0], source))
            except socket.timeout:
                seen.append(None)
    finally:
        for sock in socks.values():
            sock.close()
    return seen


def _conn_view_ovs(conn):
    o, r = conn["orig"], conn["reply"]
    return ((o["src"], o["dst"], int(o["sport"]), int(o["dport"])),
            (r["src"], r["dst"], int(r["sport"]), int(r["dport"])), conn["mark"])


def _conn_view_sim(conn):
    o, r = conn.original, conn.reply
    return ((o.src, o.dst, o.sport, o.dport), (r.src, r.dst, r.sport, r.dport), conn.mark)


def _ports_shown(view):
    (osrc, odst, osport, odport), (rsrc, rdst, rsport, rdport), mark = view
    return ((osrc, odst, osport, odport),
            (rsrc, rdst, rsport, rdport if rdport in BOUND_PORTS else "allocated"), mark)


@pytest.fixture(scope="module")
def lab():
    with ctnet.Lab() as lab:
        yield lab


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_simulator_agrees_with_ovs_conntrack(lab, name):
    specs, steps, zones = SCENARIOS[name]
    simulated, sw = run_simulated(specs, steps)
    real = run_on_ovs(lab, specs, steps, zones)
    print(f"\n{name}: sim {simulated}\n{name}: ovs {real}")
    assert [_shown(o) for o in real] == [_shown(o) for o in simulated]
    assert any(o is not None for o in real)          # the lab really carried packets
    counts = lab.channel.flow_counts()
    assert set(counts) == {e.spec for entries in sw.tables.values() for e in entries}
    ours = {e.spec: e.packets for entries in sw.tables.values() for e in entries}
    assert {s: n for s, n in counts.items() if n != ours[s]} == {}, \
        "flows whose packet counts differ (OVS's): " + "\n".join(
            f"{n} (model {ours[s]}): {s}" for s, n in counts.items() if n != ours[s])
    for zone in zones:
        theirs = sorted(_ports_shown(_conn_view_ovs(c)) for c in ctnet.connections(zone))
        mine = sorted(_ports_shown(_conn_view_sim(c)) for c in sw.ct.entries(zone))
        assert theirs == mine, f"zone {zone}"
    if name == "snat":
        ports = {real[0][1][1], real[2][1][1]}
        assert len(ports) == 2 and SNAT_IP == real[2][1][0]
    if name == "snat_port_range":
        assert {real[0][1][1], real[2][1][1]} == {s[1][1] for s in (simulated[0],
                                                                      simulated[2])}


def test_a_flush_forgets_a_marked_connection_on_both(lab):
    specs, steps, zones = SCENARIOS["firewall"]
    simulated, sw = run_simulated(specs, steps[5:6])
    run_on_ovs(lab, specs, steps[5:6], zones)
    assert len(ctnet.connections(1)) == len(sw.ct.entries(1)) == 1
    ctnet.flush(1)
    sw.ct.flush(zone=1)
    assert ctnet.connections(1) == [] and sw.ct.entries(1) == []


def _tcp_connects(lab, client_ns, server_ns, client, server):
    listener = lab.socket(server_ns, socket.SOCK_STREAM, server)
    listener.listen(1)
    with ctnet.netns(client_ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(1.0)    # a lost SYN is sent again after 1 s: that is a failure here
    sock.bind((client[0], 0))
    try:
        sock.connect(server)
        return True
    except OSError:
        return False
    finally:
        sock.close()
        listener.close()


def test_tcp_through_the_firewall_matches_the_model(lab):
    ctnet.flush(ctlab.FIREWALL_ZONE)
    lab.channel.install(ctlab.firewall())
    out = _tcp_connects(lab, lab.inside, lab.outside, (CLIENT, 0), (SERVER, HTTP))
    back = _tcp_connects(lab, lab.outside, lab.inside, (SERVER, 0), (CLIENT, HTTP))
    sw = ctlab.switch(ctlab.firewall())
    handshake = [ctlab.tcp(INSIDE, CLIENT, 40000, SERVER, HTTP, SYN),
                 ctlab.tcp(OUTSIDE, SERVER, HTTP, CLIENT, 40000, SYN_ACK),
                 ctlab.tcp(INSIDE, CLIENT, 40000, SERVER, HTTP, ACK)]
    modelled_out = all(ctlab.delivered(sw, p) for p in handshake)
    modelled_back = ctlab.delivered(sw, ctlab.tcp(OUTSIDE, SERVER, 41000, CLIENT, HTTP,
                                                  SYN)) is not None
    assert (out, back) == (modelled_out, modelled_back) == (True, False)
