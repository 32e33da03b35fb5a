"""The LB app as a cluster node (docs/cluster-learned-state.md): backend health is not
shared; the master of a switch probes the backends there, a node that is not master
counts no misses for probes it could not send, and a node that becomes master adopts
the health the switch's groups hold (the previous master's last word) over its own."""
import time

from ryu.ofproto import ofproto_v1_3_parser as parser

from tests.support.lb_app import BACKENDS, buckets, connect, healthy_backends, make_app


class Clock:
    def __init__(self):
        self.now = time.monotonic() + 1000   # after every probe healthy_backends made

    def __call__(self):
        return self.now


def test_a_slave_counts_no_misses_and_a_new_master_adopts_the_switchs_health(monkeypatch,
                                                                             tmp_path):
    app = make_app(monkeypatch, tmp_path)
    switch = connect(app)
    healthy_backends(app, switch)
    app.clock = clock = Clock()
    writable = {"yes": False}                  # another node is master now
    monkeypatch.setattr(app.runtime, "may_write", lambda dpid: writable["yes"])
    for _ in range(10):                        # many health intervals, every probe refused
        clock.now += 5
        app.probe_round()
    assert app.pending == {} and app.settings.probe_ip
    assert all(st.healthy for st in app.backends.values())   # no made-up misses

    # this node's own verdict is stale (say it saw backend 1 fail back when it was
    # master); the switch's group, set by the master since, has both backends
    app.backends[(1, BACKENDS[0])].healthy = False
    switch.sent.clear()
    writable["yes"] = True
    app.take_over(switch)
    groups = [m for m in switch.sent if isinstance(m, parser.OFPGroupMod)]
    assert groups == [] and buckets_live(app) == 2   # adopted: the group is left as it is
    assert all(st.healthy for st in app.backends.values())


def buckets_live(app):
    return len(next(iter(app.switches.values())).buckets[1])


def test_the_stale_verdict_would_have_emptied_a_bucket(monkeypatch, tmp_path):
    """The same stale verdict pushed as it is (what take_over no longer does)."""
    app = make_app(monkeypatch, tmp_path)
    switch = connect(app)
    healthy_backends(app, switch)
    app.backends[(1, BACKENDS[0])].healthy = False
    app.repair(switch)
    assert buckets(switch) == 1
