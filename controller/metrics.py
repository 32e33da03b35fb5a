"""Prometheus metrics, served at GET /metrics (prometheus_client's text format).

Counted as they happen, per switch (labels `dpid` and `dp_name`, the bridge's name):
packet-ins (controller/fastparse.py sees every one, the fast path adds up its own),
OpenFlow errors by type and code (controller/ofcounters.py), connections and
disconnections (controller/runtime.py); and flow-mods per app
(controller/switch_sync.py), config reloads by outcome (controller/reload.py), the
packet-in handling latency (controller/fastpath.py and the app base). Read at scrape
time from what the apps that run already hold (each `contribute`s a function): switches
connected, entries per app and table as of the last reconcile, learned MACs per VLAN,
load-balancer backend health, QoS queue counters as last sampled. A scrape sends
nothing to any switch. One app's failure never fails a scrape: its metrics are left out and `sdn_scrape_errors_total` counts it.

The per-switch counters and the latency histogram are plain numbers in a dict, not
prometheus_client's locked values: bumping one is a dict look-up and an add (the
receive loop counts as it reads; green threads never run two at once), and the
switch's name is put on at scrape time, so a name learnt after the first packet-in
still labels every count.
"""
import bisect
import logging

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from flows.dpid import format as format_dpid

LOG = logging.getLogger(__name__)
REGISTRY = CollectorRegistry(auto_describe=False)
CONTENT_TYPE = CONTENT_TYPE_LATEST
_contributors = {}  # app name -> function yielding metric families
_names = {}         # dpid -> its bridge's name, as last reported (ofcounters.py)


class _Apps:
    """Every app's families; apps share names (sdn_flows has an `app` label), and the
    text format allows one family per name, so same-named ones are merged."""

    def collect(self):
        merged = {}
        for name, families in sorted(_contributors.items()):
            try:
                collected = list(families())
            except Exception as err:  # noqa: BLE001 (whatever it was, the scrape goes on)
                LOG.warning("metrics of %s left out of this scrape: %s", name, err)
                SCRAPE_ERRORS.labels(name).inc()
                continue
            for family in collected:
                if family.name in merged:
                    merged[family.name].samples.extend(family.samples)
                else:
                    merged[family.name] = family
        yield from merged.values()


class SwitchCounter:
    """A counter per switch and `labels`: `inc(dpid, *values, amount=n)`."""

    def __init__(self, name, documentation, labels=()):
        self.name, self.documentation, self.labels = name, documentation, tuple(labels)
        self.counts = {}   # (dpid, *values) -> count
        REGISTRY.register(self)

    def inc(self, dpid, *values, amount=1) -> None:
        key = (dpid,) + values
        self.counts[key] = self.counts.get(key, 0) + amount

    def value(self, dpid, *values) -> int:
        return self.counts.get((dpid,) + values, 0)

    def collect(self):
        family = CounterMetricFamily(self.name, self.documentation,
                                     labels=("dpid", "dp_name") + self.labels)
        for key, count in sorted(self.counts.items()):
            family.add_metric(switch_labels(key[0]) + list(key[1:]), count)
        yield family


class LatencyHistogram:
    """A histogram with one label: `observe(value, seconds, count)` adds `count`
    observations of `seconds` (a bisect and three adds)."""
    BOUNDS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
              0.1, 0.25, 0.5, 1.0, 2.5)

    def __init__(self, name, documentation, label, values):
        self.name, self.documentation, self.label = name, documentation, label
        # value -> [counts per bucket (the last: above every bound), sum]
        self.series = {value: [[0] * (len(self.BOUNDS) + 1), 0.0] for value in values}
        REGISTRY.register(self)

    def observe(self, value, seconds, count=1) -> None:
        series = self.series[value]
        series[0][bisect.bisect_left(self.BOUNDS, seconds)] += count
        series[1] += seconds * count

    def count(self, value) -> int:
        return sum(self.series[value][0])

    def collect(self):
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, (counts, total) in sorted(self.series.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(self.BOUNDS + (float("inf"),), counts):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            family.add_metric([value], buckets, total)
        yield family


REGISTRY.register(_Apps())  # first: a scrape error it counts shows in the same scrape
PACKET_INS = SwitchCounter("sdn_packet_ins", "Packet-ins received from switches")
FAST_PATH = SwitchCounter("sdn_fast_path_packet_ins", "Packet-ins an app handled on the fast "
                          "path (controller/fastpath.py; also counted in sdn_packet_ins)")
OF_ERRORS = SwitchCounter("sdn_of_errors", "OpenFlow ERROR messages received from switches, "
                          "by error type and code (OFPET_*/OFP*C_* names; 'unknown' for a "
                          "type or code OpenFlow 1.3 does not define)", ("type", "code"))
CONNECTIONS = SwitchCounter("sdn_switch_connections", "Switch connections that completed "
                            "the OpenFlow handshake")
DISCONNECTIONS = SwitchCounter("sdn_switch_disconnections", "Switch connections that ended "
                               "after the handshake")
PACKET_IN_LATENCY = LatencyHistogram(
    "sdn_packet_in_handling_seconds", "Time from the read a packet-in arrived in to its "
    "replies being handed to the switch's send queue. path=fast_path: one observation "
    "per packet-in, each the time of its whole read (a read's replies go out together); "
    "path=event: Ryu's event path, one observation per app handler that ran, until it "
    "returned", "path", ("fast_path", "event"))
FLOW_MODS = Counter("sdn_flow_mods", "Flow-mods (adds and deletes) sent to switches", ["app"],
                    registry=REGISTRY)
CONFIG_RELOADS = Counter("sdn_config_reloads", "Config reloads (SIGHUP or POST "
                         "/v1/config/reload), by outcome: applied, or refused (a bad file: "
                         "nothing changed)", ["outcome"], registry=REGISTRY)
for _outcome in ("applied", "refused"):
    CONFIG_RELOADS.labels(_outcome)   # both shown from the start, at 0
SCRAPE_ERRORS = Counter("sdn_scrape_errors", "Apps whose metrics could not be read at a scrape",
                        ["app"], registry=REGISTRY)


def contribute(app: str, families) -> None:
    """`families()` yields prometheus_client metric families (GaugeMetricFamily, ...)."""
    _contributors[app] = families


def exposition() -> bytes:
    return generate_latest(REGISTRY)


def dpid_label(dpid: int) -> str:
    return format_dpid(dpid)


def name_switch(dpid: int, name: str) -> None:
    """Switch `dpid` is the bridge `name` (the name of its OpenFlow LOCAL port)."""
    _names[dpid] = name


def switch_labels(dpid: int) -> list:
    """[dpid, dp_name] of a per-switch metric; dp_name is "" while the name is unknown."""
    return [format_dpid(dpid), _names.get(dpid, "")]
