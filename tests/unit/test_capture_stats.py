"""tcpdump's closing counts, as the harness reads them to refuse a lossy capture."""
from mininet_topos.labkit.capture import capture_stats


def test_tcpdump_closing_counts_are_read():
    said = ("tcpdump: listening on h1-eth0, link-type EN10MB (Ethernet), snapshot length "
            "262144 bytes\n612 packets captured\n640 packets received by filter\n"
            "28 packets dropped by kernel\n1 packet dropped by interface\n")
    assert capture_stats(said) == {"captured": 612, "received by filter": 640,
                                   "dropped by kernel": 28, "dropped by interface": 1}


def test_no_counts_when_tcpdump_said_none():
    assert capture_stats("tcpdump: listening on h1-eth0\n") == {}
