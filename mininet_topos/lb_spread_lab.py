"""The load balancer's spread mode on the LB lab (mininet_topos/topos.py LbLab): the
course's exercise, 192.168.2.0/24 spread over the ports of b2 and b3 (12, 13) by a
select group, no NAT. c1 reaches the subnet through a gateway address that nobody
owns (a static neighbour entry), so every packet to it enters the switch addressed
to that MAC and the spread alone decides the port it leaves by.

Used by tests/integration/test_lb_spread_ovs.py and `make bench` (bench/lb.py).
"""
import re
import subprocess

SUBNET = "192.168.2.0/24"
PORTS = (12, 13)
GATEWAY, GATEWAY_MAC = "10.0.0.250", "02:00:00:00:02:fe"
SPREAD = {"switch": "%016x" % 1, "subnet": SUBNET, "ports": list(PORTS)}

# paced: each datagram is a new flow, so a miss in the datapath and an upcall; a burst
# of a thousand of them overflows the userspace datapath's upcall queue (seen: a
# quarter to a half of them counted)
_SEND = ("import socket,sys,time\n"
         "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
         "n,each,port=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3])\n"
         "for h in range(1,n+1):\n"
         "  for i in range(each):\n"
         "    s.sendto(b'x'*64,('192.168.2.%d'%h,port+i))\n"
         "    time.sleep(0.002)\n")


def route_through_gateway(client, interface):
    """Send the subnet's packets from `client` to the switch, to a MAC nobody has."""
    client.cmd(f"ip neigh replace {GATEWAY} lladdr {GATEWAY_MAC} dev {interface} nud permanent")
    client.cmd(f"ip route replace {SUBNET} via {GATEWAY} dev {interface}")


def send_udp(client, hosts=64, flows_per_host=4, port=9000):
    """One datagram per flow: to each of the subnet's first `hosts` addresses, from one
    source port to `flows_per_host` destination ports."""
    result = client.popen(["python3", "-c", _SEND, str(hosts), str(flows_per_host), str(port)])
    if result.wait(timeout=60) != 0:
        raise RuntimeError("sending to the spread subnet failed")
    return hosts * flows_per_host


def bucket_packets(switch="s1"):
    """{group id: [packets per bucket]} of the switch's groups, from dump-group-stats."""
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-group-stats", switch],
                         capture_output=True, text=True, check=True).stdout
    groups = {}
    for line in out.splitlines():
        found = re.search(r"group_id=(\d+)", line)
        if found:
            groups[int(found.group(1))] = [int(n) for n in re.findall(
                r"bucket\d+:packet_count=(\d+)", line)]
    return groups


def datapath_hashes(switch="s1"):
    """The switch's datapath flows of packets to the subnet whose actions hash the
    packet before a recirculation (dp_hash selection): the actions of each."""
    out = subprocess.run(["ovs-appctl", "dpif/dump-flows", switch], capture_output=True,
                         text=True, check=True).stdout
    prefix = SUBNET.rsplit(".", 2)[0] + "."          # "192.168.2."
    return [line.split("actions:", 1)[1] for line in out.splitlines()
            if "actions:" in line and f"dst={prefix}" in line
            and "hash(" in line.split("actions:", 1)[1]]
