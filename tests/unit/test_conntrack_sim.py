"""Stateful pipelines in the table simulator, as lab write-ups: a firewall that lets
replies in and nothing new, marks that cut connections, SNAT, a floating IP, zones,
ct_clear and IPv6. The pipelines are tests/support/ctlab.py's, compiled and read back
from the wire; the tracker is tests/support/conntrack.py."""
from tests.support import conntrack
from tests.support.conntrack import Tuple5
from tests.support.ctlab import (CLIENT, CLIENT2, CLIENT6, ECHO_PORT, FIP_ZONE, FLOATING_IP,
                                 HTTP, INSIDE, MARKED_PORT, OUTSIDE, SERVER, SERVER6, SNAT_IP,
                                 address, delivered, firewall, floating_ip,
                                 icmpv6, rezoned, snat, switch, tcp, udp)
from tests.support.ofsim import matches
from flows.spec import Match

SYN, SYN_ACK, ACK = 0x02, 0x12, 0x10


def state_of(sw, pkt, zone):
    """The ct_state bits `pkt` gets from the switch's tracker (the packet is not sent)."""
    return sw.ct.execute(dict(pkt), zone)["ct_state"]


def test_the_firewall_lets_the_reply_in_and_drops_a_new_connection_from_outside():
    fw = switch(firewall())
    syn = tcp(INSIDE, CLIENT, 40000, SERVER, HTTP, SYN)
    assert delivered(fw, syn)[0] == OUTSIDE                          # allowed, committed
    assert fw.ct.dump() == ["zone=1,orig=(6,10.0.0.5:40000->198.51.100.7:80),"
                            "reply=(6,198.51.100.7:80->10.0.0.5:40000),mark=0x0,label=0x0"]
    assert delivered(fw, tcp(OUTSIDE, SERVER, HTTP, CLIENT, 40000, SYN_ACK))[0] == INSIDE
    assert delivered(fw, tcp(INSIDE, CLIENT, 40000, SERVER, HTTP, ACK))[0] == OUTSIDE
    # the server opening a connection of its own to the client: +new from outside
    assert delivered(fw, tcp(OUTSIDE, SERVER, 41000, CLIENT, HTTP, SYN)) is None
    # inside, but to a port no rule opens: never committed, so its "reply" is new too
    assert delivered(fw, tcp(INSIDE, CLIENT, 40001, SERVER, 22, SYN)) is None
    assert delivered(fw, tcp(OUTSIDE, SERVER, 22, CLIENT, 40001, SYN_ACK)) is None
    assert len(fw.ct.entries()) == 1


def test_ct_state_follows_ovs_userspace_conntrack():
    fw = switch(firewall())
    out = udp(INSIDE, CLIENT, 40000, SERVER, ECHO_PORT)
    back = udp(OUTSIDE, SERVER, ECHO_PORT, CLIENT, 40000)
    bits = conntrack.CT_FLAGS
    assert state_of(fw, out, 1) == bits["trk"] | bits["new"]           # not committed
    assert state_of(fw, out, 1) == bits["trk"] | bits["new"]           # still not
    assert delivered(fw, out)[0] == OUTSIDE                              # committed now
    # UDP: new until the first reply, however many packets (what OVS 3.1 did)
    assert state_of(fw, out, 1) == state_of(fw, out, 1) == bits["trk"] | bits["new"]
    assert state_of(fw, back, 1) == bits["trk"] | bits["est"] | bits["rpl"]
    assert state_of(fw, out, 1) == bits["trk"] | bits["est"]
    # TCP: a SYN sent again before the answer is new; after it, the client's ACK is not
    syn = tcp(INSIDE, CLIENT, 40003, SERVER, HTTP, SYN)
    delivered(fw, syn)
    assert state_of(fw, syn, 1) == bits["trk"] | bits["new"]
    delivered(fw, tcp(OUTSIDE, SERVER, HTTP, CLIENT, 40003, SYN_ACK))
    assert state_of(fw, tcp(INSIDE, CLIENT, 40003, SERVER, HTTP, ACK), 1) == \
        bits["trk"] | bits["est"]
    assert state_of(fw, tcp(INSIDE, CLIENT, 40003, SERVER, HTTP, 0x01), 1) == \
        bits["trk"] | bits["inv"]                           # FIN without ACK
    # ICMP: every echo request is new until the first reply
    ping = icmpv6(INSIDE, CLIENT6, SERVER6, 128, icmp_id=7)
    fw.ct.execute(dict(ping), 1, commit=True)
    assert state_of(fw, ping, 1) == state_of(fw, ping, 1) == bits["trk"] | bits["new"]
    pong = icmpv6(OUTSIDE, SERVER6, CLIENT6, 129, icmp_id=7)
    assert state_of(fw, pong, 1) == bits["trk"] | bits["est"] | bits["rpl"]
    assert state_of(fw, ping, 1) == bits["trk"] | bits["est"]
    # a TCP SYN+ACK cannot open a connection: invalid, and dropped
    synack = tcp(OUTSIDE, SERVER, HTTP, CLIENT, 40002, SYN_ACK)
    assert state_of(fw, synack, 1) == bits["trk"] | bits["inv"]
    assert delivered(fw, synack) is None


def test_an_icmp_error_about_a_connection_is_related():
    fw = switch(firewall())
    syn = tcp(INSIDE, CLIENT6, 40000, SERVER6, HTTP)
    assert delivered(fw, syn)[0] == OUTSIDE
    unreachable = icmpv6(OUTSIDE, SERVER6, CLIENT6, 1, icmp_quoted=syn)
    assert state_of(fw, unreachable, 1) & 0x3F == 0x20 | 0x04 | 0x08     # +trk+rel+rpl
    stray = icmpv6(OUTSIDE, SERVER6, CLIENT6, 1,
                   icmp_quoted=tcp(INSIDE, CLIENT6, 40009, SERVER6, HTTP))
    assert state_of(fw, stray, 1) == 0x20 | 0x10                         # +trk+inv


def test_a_connection_committed_with_mark_1_is_cut_and_a_flush_forgets_it():
    fw = switch(firewall())
    first = udp(INSIDE, CLIENT, 40000, SERVER, MARKED_PORT)
    assert delivered(fw, first)[0] == OUTSIDE             # the new packet itself passes
    assert fw.conntrack == {(1, CLIENT, SERVER, 17, 40000, MARKED_PORT): 1}
    reply = udp(OUTSIDE, SERVER, MARKED_PORT, CLIENT, 40000)
    assert delivered(fw, reply) is None                   # established, but marked: cut
    assert delivered(fw, first) is None
    assert fw.ct.flush(zone=2) == 0 and fw.ct.flush(zone=1) == 1
    assert fw.conntrack == {}
    assert delivered(fw, reply) is None                   # now +new from outside


def test_flushing_one_connection_leaves_the_others():
    fw = switch(firewall())
    for sport in (40000, 40001):
        delivered(fw, udp(INSIDE, CLIENT, sport, SERVER, ECHO_PORT))
    gone = Tuple5(0x0800, 17, CLIENT, SERVER, 40000, ECHO_PORT)
    assert fw.ct.flush(original=gone) == 1
    assert [c.original.sport for c in fw.ct.entries()] == [40001]


def test_snat_rewrites_the_source_and_translates_the_reply_back():
    nat = switch(snat())
    port, out = delivered(nat, udp(INSIDE, CLIENT, 40000, SERVER, ECHO_PORT))
    assert port == OUTSIDE and address(out, "src") == (SNAT_IP, 40000)   # port kept
    port, back = delivered(nat, udp(OUTSIDE, SERVER, ECHO_PORT, SNAT_IP, 40000))
    assert port == INSIDE and address(back, "dst") == (CLIENT, 40000)
    assert address(back, "src") == (SERVER, ECHO_PORT)
    # later packets of the connection are translated the same way
    assert address(delivered(nat, udp(INSIDE, CLIENT, 40000, SERVER, ECHO_PORT))[1],
                   "src") == (SNAT_IP, 40000)


def test_two_clients_with_one_source_port_get_distinct_translated_ports():
    nat = switch(snat())
    first = address(delivered(nat, udp(INSIDE, CLIENT, 40000, SERVER, ECHO_PORT))[1], "src")
    second = address(delivered(nat, udp(INSIDE, CLIENT2, 40000, SERVER, ECHO_PORT))[1], "src")
    # the first keeps its port; the second gets the next one up (what OVS did)
    assert first == (SNAT_IP, 40000) and second == (SNAT_IP, 40001)
    # each reply finds its own client
    to_second = delivered(nat, udp(OUTSIDE, SERVER, ECHO_PORT, *second))[1]
    assert address(to_second, "dst") == (CLIENT2, 40000)
    ranged = switch(snat(ports=(50000, 50001)))
    ports = [address(delivered(ranged, udp(INSIDE, client, 40000, SERVER, ECHO_PORT))[1],
                     "src")[1] for client in (CLIENT, CLIENT2)]
    assert sorted(ports) == [50000, 50001]


def test_a_floating_ip_is_translated_both_ways():
    fip = switch(floating_ip())
    port, inside = delivered(fip, tcp(OUTSIDE, SERVER, 41000, FLOATING_IP, HTTP))
    assert port == INSIDE and address(inside, "dst") == (CLIENT, HTTP)
    port, reply = delivered(fip, tcp(INSIDE, CLIENT, HTTP, SERVER, 41000, SYN_ACK))
    assert port == OUTSIDE and address(reply, "src") == (FLOATING_IP, HTTP)
    # the fixed IP itself is not reachable from outside without a connection
    assert delivered(fip, tcp(OUTSIDE, SERVER, 41001, CLIENT, HTTP)) is None
    (conn,) = fip.ct.entries(FIP_ZONE)
    assert (conn.nat, conn.reply.src) == ("dst", CLIENT)


def test_zones_keep_two_networks_identical_tuples_apart():
    fw = switch(firewall(zone=7))
    delivered(fw, udp(INSIDE, CLIENT, 40000, SERVER, ECHO_PORT))
    reply = udp(OUTSIDE, SERVER, ECHO_PORT, CLIENT, 40000)
    assert state_of(fw, reply, 7) == 0x20 | 0x02 | 0x08      # +trk+est+rpl in its zone
    assert state_of(fw, reply, 8) == 0x20 | 0x01             # +trk+new in another
    assert [c.zone for c in fw.ct.entries()] == [7]
    other = switch(firewall(zone=8))
    assert delivered(other, reply) is None                  # network 8 never saw it


def test_ct_clear_lets_a_packet_be_tracked_again_in_another_zone():
    lab = switch(rezoned(3, 4))
    pkt = udp(INSIDE, CLIENT, 40000, SERVER, ECHO_PORT)
    reply = udp(OUTSIDE, SERVER, ECHO_PORT, CLIENT, 40000)
    port, out = delivered(lab, pkt)
    assert port == OUTSIDE and "ct_state" not in out     # a commit leaves it untracked
    assert sorted(c.zone for c in lab.ct.entries()) == [3, 4]
    assert delivered(lab, reply)[0] == INSIDE            # established in zone 3: cleared
    assert delivered(lab, pkt)[0] == OUTSIDE
    unclear = switch(rezoned(3, 4, clear=False))
    assert delivered(unclear, pkt)[0] == OUTSIDE         # new: committed, so untracked
    assert delivered(unclear, reply) is None             # still tracked: stage two refuses
    assert delivered(unclear, pkt) is None


def test_ipv6_tcp_is_tracked_and_neighbour_discovery_passes_untracked():
    fw = switch(firewall())
    assert delivered(fw, tcp(INSIDE, CLIENT6, 40000, SERVER6, HTTP))[0] == OUTSIDE
    assert delivered(fw, tcp(OUTSIDE, SERVER6, HTTP, CLIENT6, 40000, SYN_ACK))[0] == INSIDE
    assert delivered(fw, tcp(OUTSIDE, SERVER6, 41000, CLIENT6, HTTP)) is None
    solicit = icmpv6(OUTSIDE, "fe80::7", "ff02::1:ff00:5", 135, nd_target=CLIENT6)
    port, out = delivered(fw, solicit)
    assert port == INSIDE and "ct_state" not in out     # allowed before conntrack
    # had it gone through conntrack, it would have been invalid: ND is not tracked
    assert state_of(fw, solicit, 1) == 0x30
    assert matches(Match.of(ct_state="-trk"), out)
