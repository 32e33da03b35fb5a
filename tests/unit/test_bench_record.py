"""The benchmarks print their tables from the rows they record (bench/record.py), so
the table on the terminal and the record of the run cannot disagree. Fake results, no
OVS: the printing and recording code only. The labs' checks too (mininet_topos/labs.py)."""
from types import SimpleNamespace

from bench import controller_load, failover, ovs_packet_ins, record
from mininet_topos.labs import LabRun


class FakeResult:
    def __init__(self, per_second, p50=0.5, p99=0.9):
        self.per_second, self.generator_us, self.seconds, self.unanswered = \
            per_second, 1.234, 3.04, 0
        self._percentiles = {0.5: p50, 0.99: p99}

    def percentile(self, q):
        return self._percentiles[q]


def load(per_second, cpu=0.974, p99=0.9):
    return SimpleNamespace(result=FakeResult(per_second, p99=p99), controller_cpu=cpu)


def printed_rows(out, labels):
    return [line for line in out.splitlines() if line.split("  ")[0].strip() in labels]


def test_controller_load_prints_the_rows_it_records(capsys):
    scale = {"scale": load(1), "idle_cpu": 0.0041, "rss": 99.4}
    rows = [("generator alone", {"throughput": load(741505.2), "latency": load(1, p99=0.3)}),
            ("l2_switch reactive", {"throughput": load(62840.4), "latency": load(1),
                                    **scale}),
            ("ryu simple_switch_13", {"throughput": load(4903), "latency": load(1, p99=1.8),
                                      **dict(scale, rss=72)})]
    run = record.Run("controller_load", "t", argv=["x"], facts={})
    controller_load.print_rows(rows, run)
    out = capsys.readouterr().out
    load_table, scale_table = run.tables
    assert load_table.rows[1][:5] == ("l2_switch reactive", 62840, 12.82, 97, 1.23)
    assert load_table.peers == [0, 2] and scale_table.peers == [1]
    assert [r[0] for r in scale_table.rows] == ["l2_switch reactive", "ryu simple_switch_13"]
    assert scale_table.rows[0][3:6] == (0.4, 99, 1.38)
    lines = printed_rows(out, {"l2_switch reactive"})
    assert lines[0].split() == ["l2_switch", "reactive", "62840", "12.82", "97%", "1.23",
                                "0.500", "0.900", "0.50", "97%", "1.23"]
    assert lines[1].split() == ["l2_switch", "reactive", "3.0s", "97%", "0.4%", "99", "1.38",
                                "0", "1.23"]


def test_ovs_packet_ins_prints_the_rows_it_records(capsys):
    row = {"offered": 2500.0, "answered": 2401.6, "out": 2300.2, "lost": 3, "ovs_cpu": 1.46,
           "ctl_cpu": 0.224, "gen_cpu": 0.2}
    none = dict(row, answered=0)
    run = record.Run("ovs_packet_ins", "t", argv=["x"], facts={})
    ovs_packet_ins.print_rows([("OVS alone (instant ctl)", [row]),
                               ("l2_switch reactive", [row, none])], run, 3)
    out = capsys.readouterr().out
    [table] = run.tables
    assert table.rows[0] == ("OVS alone (instant ctl)", 2500, 2402, 2300, 3, 146, 22, 20, 608)
    assert table.rows[2][-1] is None and table.peers == [0]
    lines = printed_rows(out, {"OVS alone (instant ctl)", "l2_switch reactive"})
    assert lines[0].split()[-8:] == ["2500", "2402", "2300", "3", "146%", "22%", "20%", "608"]
    assert lines[2].split()[-1] == "nan"


def test_failover_prints_the_summary_it_records():
    row = failover.summary("the new master's first flow-mod on s1", [2.05, 2.311, None])
    assert row == ("the new master's first flow-mod on s1", 2.18, 2.31, 2.05, 1, False)
    assert failover.summary_line(*row).split()[-6:] == ["2.18s", "2.31s", "2.05s", "1",
                                                        "OUTSIDE", "target"]
    never = failover.summary("another node says it is master", [None])
    assert never[1] is None and failover.summary_line(*never).endswith("never")


def test_a_lab_records_the_checks_it_prints(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(record.ENV_VAR, raising=False)
    lab = LabRun("VLAN lab", "vlan-lab", tmp_path)
    lab.check("h1 -> h2 (VLAN 10)", "delivered", "delivered", True)
    lab.check("h1 -> h3 (VLAN 20)", "dropped", "delivered", False)
    assert lab.finish() == 1
    [path] = (tmp_path / "results").glob("vlan-lab-*.json")
    data = record.read(path)
    assert (data["name"], data["title"]) == ("vlan-lab", "VLAN lab")
    checks, total = data["tables"]
    assert checks["rows"] == [["h1 -> h2 (VLAN 10)", "delivered", "delivered", "PASS"],
                              ["h1 -> h3 (VLAN 20)", "dropped", "delivered", "FAIL"]]
    assert total["rows"][0][:2] == [2, 1]
    out = capsys.readouterr().out
    assert "h1 -> h3 (VLAN 20)" in out and f"record: {path}" in out
