"""Prometheus metrics, served at GET /metrics (prometheus_client's text format).

Counted as they happen: packet-ins per switch (controller/fastparse.py sees every
one) and flow-mods per app (controller/southbound.push). Read at scrape time from
the apps that run (each `contribute`s a function): switches connected, entries per
app and table (read back from the switches), learned MACs per VLAN, load-balancer
backend health, QoS queue counters. One app's slow switch never fails a scrape: its
metrics are left out and `sdn_scrape_errors_total` counts it.
"""
import logging

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from flows.dpid import format as format_dpid

LOG = logging.getLogger(__name__)
REGISTRY = CollectorRegistry(auto_describe=False)
CONTENT_TYPE = CONTENT_TYPE_LATEST
_contributors = {}  # app name -> function yielding metric families


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


REGISTRY.register(_Apps())  # first: a scrape error it counts shows in the same scrape
PACKET_INS = Counter("sdn_packet_ins", "Packet-ins received from switches", ["dpid"],
                     registry=REGISTRY)
FAST_PATH = Counter("sdn_fast_path_packet_ins", "Packet-ins an app handled on the fast path "
                    "(controller/fastpath.py; also counted in sdn_packet_ins)", ["dpid"],
                    registry=REGISTRY)
FLOW_MODS = Counter("sdn_flow_mods", "Flow-mods (adds and deletes) sent to switches", ["app"],
                    registry=REGISTRY)
SCRAPE_ERRORS = Counter("sdn_scrape_errors", "Apps whose metrics could not be read at a scrape",
                        ["app"], registry=REGISTRY)


def contribute(app: str, families) -> None:
    """`families()` yields prometheus_client metric families (GaugeMetricFamily, ...)."""
    _contributors[app] = families


def exposition() -> bytes:
    return generate_latest(REGISTRY)


def dpid_label(dpid: int) -> str:
    return format_dpid(dpid)
