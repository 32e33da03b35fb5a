"""One JSON record per run of a bench, `make reliability` or a lab: what ran, when, on
what machine, and the rows of every table it printed (with its peer rows, measured in
the same run). Pure data: the script prints its table from the same `Table.rows`, and
docs/tools/results.py turns published records into docs/results.md.

    run = record.Run("l2_throughput", "Learning switch")
    table = run.table("iperf3 h1 -> h4", [record.Column("setup"),
                                          record.Column("rate", "Mbit/s")])
    table.add("OVS NORMAL", 1199, peer=True)
    ...
    run.write()   # $SDN_RESULTS_DIR, else reports/results/

Standard library and controller.datapath only (the labs under mininet_topos/ write
records too).
"""
import datetime
import json
import os
import platform
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from controller import datapath   # standard library only

REPO = Path(__file__).resolve().parents[1]
ENV_VAR = "SDN_RESULTS_DIR"
DEFAULT_DIR = REPO / "reports" / "results"
RECORDED = "recorded by bench/record.py"
# what a record must hold (docs/tools/results.py refuses a record without one of them)
FIELDS = ("name", "title", "date", "source", "machine", "command", "tables")
TABLE_FIELDS = ("title", "columns", "rows")


@dataclass(frozen=True)
class Column:
    """A column of a table: its name and the unit of its values (None: a label, a
    count or a ratio)."""
    name: str
    unit: str = None

    def as_json(self):
        return {"name": self.name, "unit": self.unit}


@dataclass
class Table:
    """Rows of values, one per column, in the order they were measured; `peers` are the
    indexes of the rows that are peers (the setups the others are compared with)."""
    title: str
    columns: list
    rows: list = field(default_factory=list)
    peers: list = field(default_factory=list)

    def add(self, *values, peer=False):
        if len(values) != len(self.columns):
            raise ValueError(f"table {self.title!r}: {len(values)} values for "
                             f"{len(self.columns)} columns")
        if peer:
            self.peers.append(len(self.rows))
        self.rows.append(tuple(values))
        return self.rows[-1]

    def as_json(self):
        return {"title": self.title, "columns": [c.as_json() for c in self.columns],
                "rows": [list(row) for row in self.rows], "peers": list(self.peers)}


def _first_line(*command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def _first_match(path, pattern):
    """The first group of `pattern`'s first match in the file at `path` (multi-line
    mode), None when the file cannot be read or nothing matches."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1) if found else None


def _cpu_model(cpuinfo="/proc/cpuinfo"):
    model = _first_match(cpuinfo, r"^model name\s*:\s*(.+)$")
    return model.strip() if model else None


def _os_name(os_release="/etc/os-release"):
    return _first_match(os_release, r'^PRETTY_NAME="?([^"\n]*)"?$')


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _ovs_version():
    line = _first_line("ovs-vsctl", "--version")   # "ovs-vsctl (Open vSwitch) 3.1.0"
    return line.rsplit(" ", 1)[-1] if line else None


def machine():
    """What the numbers depend on, without the host's name or users: the CPU, the
    kernel, the OS, the versions of OVS, Python and Ryu, and the datapath type."""
    return {"cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
            "kernel": platform.release(), "os": _os_name(), "ovs": _ovs_version(),
            "python": platform.python_version(), "ryu": _version("ryu"),
            "datapath": datapath.choose_datapath()}


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def directory(default=None):
    """Where records go: $SDN_RESULTS_DIR, else `default`, else reports/results/."""
    return Path(os.environ.get(ENV_VAR) or default or DEFAULT_DIR)


def _scrub(text, host=None):
    """No host name in a record (a command line may hold it)."""
    host = socket.gethostname() if host is None else host
    if len(host) < 3:
        return text
    return re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", "<host>", text)


def dumps(data, indent=0):
    """JSON, one line per key, but a list or object of plain values (a row, a column)
    on one line when it fits: a record reads and diffs a row at a time."""
    flat = json.dumps(data, ensure_ascii=False)
    if not isinstance(data, (list, dict)):
        return flat
    values = data.values() if isinstance(data, dict) else data
    if indent + len(flat) <= 96 and not any(isinstance(v, (list, dict)) for v in values):
        return flat
    inner = " " * (indent + 1)
    if isinstance(data, dict):
        items = [f"{inner}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [inner + dumps(v, indent + 1) for v in data]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def command(argv):
    """The command line as one would type it: a script of this repository run with
    `python -m` (argv[0] is then its path) is named by its module."""
    argv = [_scrub(str(a)) for a in argv]
    if argv and argv[0].endswith(".py"):
        path = Path(argv[0]).resolve()
        if REPO in path.parents:
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            return ["python", "-m", module, *argv[1:]]
    return argv


class Run:
    """One run of a script: its name (the module's, e.g. l2_throughput), a title, the
    tables it printed. The date is when it started (UTC)."""

    def __init__(self, name, title, argv=None, started=None, facts=None):
        self.name, self.title = name, title
        self.command = command(sys.argv if argv is None else argv)
        self.date = started or now()
        self.facts = facts
        self.tables = []

    def table(self, title, columns):
        self.tables.append(Table(title, list(columns)))
        return self.tables[-1]

    def as_json(self):
        return {"name": self.name, "title": self.title,
                "date": self.date.isoformat().replace("+00:00", "Z"), "source": RECORDED,
                "machine": machine() if self.facts is None else self.facts,
                "command": self.command, "tables": [t.as_json() for t in self.tables]}

    def write(self, where=None):
        """Write the record as <where>/<name>-<date>.json (`where` by default:
        directory()); returns the path."""
        target = Path(where) if where else directory()
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{self.name}-{self.date.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(dumps(self.as_json()) + "\n")
        print(f"record: {path}", flush=True)
        return path


def read(path):
    """A record as written (a dict)."""
    return json.loads(Path(path).read_text())
