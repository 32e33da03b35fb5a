"""controller/metrics.py: families from several apps merge into valid exposition text,
and one app failing leaves the others in the scrape."""
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from controller import metrics


def gauge(app, value):
    family = GaugeMetricFamily("sdn_switches_connected", "Switches an app has connected",
                               labels=["app"])
    family.add_metric([app], value)
    return family


def test_apps_share_a_family_and_a_failing_app_is_left_out(monkeypatch):
    monkeypatch.setattr(metrics, "_contributors", {})
    metrics.contribute("vlan", lambda: iter([gauge("vlan", 2)]))
    metrics.contribute("l2_switch", lambda: iter([gauge("l2_switch", 3)]))

    def broken():
        raise TimeoutError("switch 0000000000000001 did not answer")
        yield  # noqa (a generator)
    metrics.contribute("qos", broken)
    metrics.FLOW_MODS.labels("vlan").inc(5)
    text = metrics.exposition().decode()
    assert text.count("# TYPE sdn_switches_connected gauge") == 1
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("sdn_switches_connected", (("app", "vlan"),))] == 2
    assert samples[("sdn_switches_connected", (("app", "l2_switch"),))] == 3
    assert samples[("sdn_flow_mods_total", (("app", "vlan"),))] >= 5
    assert samples[("sdn_scrape_errors_total", (("app", "qos"),))] >= 1
