"""make lab-qos's report: the plot and the Markdown table come out of measured rows."""
from mininet_topos import qos_lab


class FakeLab:
    rows = [("h1 alone (queue 0)", "10.0 ±10%", "9.71", "PASS"),
            ("h2 metered", "2.0 ±15%", "2.61", "FAIL")]


def test_report_and_plot_are_written(tmp_path):
    timelines = {f"h{i}": [(t / 2, (4 - i) * 1e6) for t in range(1, 20)] for i in (1, 2, 3)}
    qos_lab.plot(timelines, 8, tmp_path / "qos-lab.png")
    assert (tmp_path / "qos-lab.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = {"datapath": "netdev", "queue_mechanism": "tc u32 filters",
            "policing_mechanism": "meter"}
    qos_lab.write_report(FakeLab(), info, tmp_path, 70.2)
    text = (tmp_path / "qos-lab.md").read_text()
    assert "| h2 metered | 2.0 ±15% | 2.61 | FAIL |" in text and "`netdev`" in text
