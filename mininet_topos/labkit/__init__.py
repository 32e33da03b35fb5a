"""The lab kit: what any Ryu + Open vSwitch + Mininet lab needs, knowing nothing of this
project's apps. Mininet and the standard library only.

- controller: a ryu-manager we start and stop (process group, free ports, log, REST)
- network: a Mininet network we own, its switch flavours, ping and raw frames
- ovs: the host's Open vSwitch (start it, crash ovs-vswitchd, recreate a bridge)
- capture: tcpdump on host interfaces, read back per frame
- traffic: iperf3 TCP/UDP streams and HTTP (httpload.py, udpcount.py run inside hosts)
- waits: poll until a condition holds
- etcd: a real etcd, one member or a cluster of several, on free local ports

mininet_topos/harness.py puts our controller and apps' waits on top.
"""
