"""The results page (docs/tools/results.py) and the records it is made of
(bench/record.py): a record written is the record read, the page shows each run's date
and machine and its rows in order, a broken record is refused by its file's name, and
the committed docs/results.md is what the committed records make."""
import datetime
import json
import socket

import pytest

from bench import record
from docs.tools import results

FACTS = {"cpu_model": "Test CPU 9000", "cpu_count": 2, "kernel": "6.1.0", "os": "Debian 12",
         "ovs": "3.1.0", "python": "3.11.2", "ryu": "4.34", "datapath": "netdev"}
WHEN = datetime.datetime(2026, 12, 3, 9, 30, tzinfo=datetime.timezone.utc)


def sample_run(name="l2_throughput", started=WHEN):
    run = record.Run(name, "Learning switch", argv=["bench/l2_throughput.py", "--runs", "1"],
                     started=started, facts=FACTS)
    table = run.table("iperf3 h1 -> h4", [record.Column("setup"),
                                          record.Column("rate", "Mbit/s"),
                                          record.Column("x NORMAL"),
                                          record.Column("warm packet-ins")])
    table.add("OVS NORMAL", 1199, 1.0, None, peer=True)
    table.add("l2_switch reactive", 1254, 1.05, 0)
    table.add("l2_switch datapath", 1356, 1.13, 0)
    return run


def test_a_record_written_is_the_record_read(tmp_path, monkeypatch):
    monkeypatch.setenv(record.ENV_VAR, str(tmp_path))
    path = sample_run().write()
    assert path == tmp_path / "l2_throughput-20261203T093000Z.json"
    data = record.read(path)
    assert data == json.loads(json.dumps(sample_run().as_json()))
    assert data["date"] == "2026-12-03T09:30:00Z" and data["source"] == record.RECORDED
    assert data["command"] == ["python", "-m", "bench.l2_throughput", "--runs", "1"]
    assert data["machine"] == FACTS
    [table] = data["tables"]
    assert [c["unit"] for c in table["columns"]] == [None, "Mbit/s", None, None]
    assert table["rows"][0] == ["OVS NORMAL", 1199, 1.0, None] and table["peers"] == [0]
    assert results.check(path, data) is data


def test_a_record_file_holds_a_row_a_line():
    text = record.dumps(sample_run().as_json())
    assert json.loads(text) == sample_run().as_json()
    assert '\n    ["l2_switch reactive", 1254, 1.05, 0],\n' in text
    assert '\n    {"name": "rate", "unit": "Mbit/s"},\n' in text


def test_a_command_line_names_no_host():
    assert record._scrub("ssh lab-host.example -p 22 lab-host", "lab-host") == \
        "ssh <host>.example -p 22 <host>"
    assert record._scrub("a lab-hosts b", "lab-host") == "a lab-hosts b"


def test_a_row_must_have_a_value_per_column():
    table = sample_run().tables[0]
    with pytest.raises(ValueError, match="3 values for 4 columns"):
        table.add("ryu", 1256, 1.05)


def test_the_machine_facts_are_there_and_name_no_host(tmp_path):
    facts = record.machine()
    assert set(facts) == set(FACTS)
    assert facts["cpu_count"] >= 1 and facts["python"].startswith("3.")
    assert facts["datapath"] in ("system", "netdev")
    host = socket.gethostname()
    assert len(host) < 3 or host not in json.dumps(facts)
    run = record.Run("x", "X", argv=["x"])
    assert run.as_json()["date"].endswith("Z")


def test_the_page_shows_each_runs_date_machine_and_rows_in_order(tmp_path):
    older = sample_run(started=WHEN - datetime.timedelta(days=1)).as_json()
    newer = sample_run(started=WHEN).as_json()
    older["source"] = results.TRANSCRIBED
    older["machine"] = {"cpu_count": 2, "kernel": "6.18"}
    other = sample_run(name="something_new").as_json()
    page = results.render([newer, other, older])
    prose = " ".join(page.split("\n"))   # the prose is wrapped
    assert "Run: 2026-12-02 09:30 UTC (transcribed)" in prose
    assert "Run: 2026-12-03 09:30 UTC (recorded)" in prose
    assert "on 2 x Test CPU 9000, Linux 6.1.0, Debian 12, Open vSwitch 3.1.0 (netdev " \
           "datapath), Python 3.11.2, Ryu 4.34." in prose
    assert "on 2 CPUs, Linux 6.18." in prose
    assert "`python -m bench.l2_throughput --runs 1`" in prose
    # two runs of the same title: each heading says which; links to the title reach the first
    assert "\n### Learning switch, 2026-12-02 09:30 UTC {#learning-switch}\n" in page
    assert "\n### Learning switch, 2026-12-03 09:30 UTC\n" in page
    # older run first, within its section; an unknown name under "Other runs", last
    assert page.index("2026-12-02 09:30") < page.index("2026-12-03 09:30") \
        < page.index("## Other runs")
    assert page.index("## Throughput") < page.index("## Other runs")
    rows = [line for line in page.splitlines() if line.startswith("| ")]
    assert rows[:4] == ["| setup | rate (Mbit/s) | x NORMAL | warm packet-ins |",
                        "| *OVS NORMAL* | *1199* | *1.0* | *n/a* |",
                        "| l2_switch reactive | 1254 | 1.05 | 0 |",
                        "| l2_switch datapath | 1356 | 1.13 | 0 |"]
    assert "|---|---:|---:|---:|" in page


@pytest.mark.parametrize("broken, message", [
    (lambda d: d.pop("date"), "has no 'date' field"),
    (lambda d: d.pop("machine"), "has no 'machine' field"),
    (lambda d: d["tables"][0].pop("columns"), "table 1 has no 'columns' field"),
    (lambda d: d["tables"][0]["rows"][1].pop(), "has not 4 values"),
    (lambda d: d.update(date="yesterday"), "'date' is not an ISO date"),
    (lambda d: d.update(date=None), "only a transcribed record may be undated"),
])
def test_a_broken_record_is_refused_by_its_files_name(tmp_path, capsys, broken, message):
    data = sample_run().as_json()
    broken(data)
    (tmp_path / "fine.json").write_text(json.dumps(sample_run("other").as_json()))
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(results.RecordError, match=message) as raised:
        results.load_all(tmp_path)
    assert str(raised.value).startswith(str(tmp_path / "broken.json"))
    page = tmp_path / "page.md"
    assert results.main(["--records", str(tmp_path), "--page", str(page)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"results: {tmp_path / 'broken.json'}: ") and message in err
    assert "Traceback" not in err and not page.exists()


def test_a_file_that_is_not_json_is_named(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(results.RecordError, match=f"^{tmp_path / 'bad.json'}: not JSON"):
        results.load_all(tmp_path)


def test_publishing_keeps_the_newest_record_of_each_run(tmp_path, capsys):
    source, published = tmp_path / "reports", tmp_path / "published"
    published.mkdir()
    transcribed = sample_run(started=WHEN - datetime.timedelta(days=9)).as_json()
    transcribed["source"] = results.TRANSCRIBED
    (published / "l2_throughput-2026-11-25.json").write_text(json.dumps(transcribed))
    (published / "keep.json").write_text(json.dumps(sample_run("overlay").as_json()))
    for days in (2, 0, 1):
        sample_run(started=WHEN - datetime.timedelta(days=days)).write(source)
    capsys.readouterr()
    assert results.publish(source, published) == [published / "l2_throughput.json"]
    assert sorted(p.name for p in published.iterdir()) == ["keep.json", "l2_throughput.json"]
    assert record.read(published / "l2_throughput.json")["date"] == "2026-12-03T09:30:00Z"


def test_the_committed_page_is_what_the_committed_records_make():
    records = results.load_all()
    assert records, "docs/results/ holds the published records"
    assert results.PAGE.read_text() == results.render(records), \
        "docs/results.md is generated: run make results (do not edit it by hand)"
    assert all(r["source"] in (results.TRANSCRIBED, record.RECORDED) for r in records)
    placed = {name for _, names in results.SECTIONS for name in names}
    assert sorted({r["name"] for r in records} - placed) == []
