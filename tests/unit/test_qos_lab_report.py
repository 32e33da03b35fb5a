"""The lab reports (mininet_topos/labs.py, make lab-*): the Markdown table and pictures
come out of the checks as made; the HTB lab's plot is drawn from measured samples."""
from mininet_topos import qos_lab
from mininet_topos.labs import LabRun


def test_report_lists_every_check_and_fails_when_one_fails(tmp_path, capsys):
    lab = LabRun("HTB QoS lab", "qos-lab", tmp_path)
    lab.note("Datapath `netdev`.")
    lab.step("each sender alone")
    assert lab.check("h1 alone (queue 0)", "10.0 Mbit/s ±10%", "9.71 Mbit/s", True)
    assert not lab.check("h2 metered", "2.0 Mbit/s ±15%", "2.61 Mbit/s", False)
    timelines = {f"h{i}": [(t / 2, (4 - i) * 1e6) for t in range(1, 20)] for i in (1, 2, 3)}
    qos_lab.plot(timelines, 8, lab.picture("qos-lab.png", "rates"))
    assert (tmp_path / "qos-lab.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert lab.finish() == 1
    text = (tmp_path / "qos-lab.md").read_text()
    assert "| h2 metered | 2.0 Mbit/s ±15% | 2.61 Mbit/s | FAIL |" in text
    assert "`netdev`" in text and "![rates](qos-lab.png)" in text and "1 of 2 checks" in text
    out = capsys.readouterr().out
    assert "[1] each sender alone" in out and out.rstrip().endswith("FAIL")
