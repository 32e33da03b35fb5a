"""What every `make lab-*` shares: numbered progress lines, checks printed and kept as
(check, expected, observed, PASS/FAIL), and a Markdown report with pictures under
reports/. Each lab module builds its network with the harness (which cleans up
whatever happens) and returns `LabRun.finish()` as its exit status."""
import argparse
import time
from pathlib import Path

from bench import record


class LabRun:
    def __init__(self, title, slug, reports="reports"):
        self.title, self.slug = title, slug
        self.reports = Path(reports)
        self.reports.mkdir(parents=True, exist_ok=True)
        self.rows, self.pictures, self.notes = [], [], []
        self.steps, self.started = 0, time.monotonic()
        self.record = record.Run(slug, title)
        print(f"=== {title} ===", flush=True)

    def step(self, text):
        self.steps += 1
        print(f"[{self.steps}] {text}", flush=True)

    def check(self, what, expected, observed, ok):
        result = "PASS" if ok else "FAIL"
        self.rows.append((what, str(expected), str(observed), result))
        print(f"    {what:<48} expected {expected!s:<24} observed {observed!s:<24} {result}",
              flush=True)
        return ok

    def picture(self, name, caption):
        """A path under reports/ for a picture the report shows with `caption`."""
        self.pictures.append((name, caption))
        return self.reports / name

    def note(self, text):
        self.notes.append(text)

    @property
    def passed(self):
        return bool(self.rows) and all(row[-1] == "PASS" for row in self.rows)

    def finish(self, problems=()):
        """Write the report, print the table; 0 when every check passed."""
        elapsed = time.monotonic() - self.started
        lines = [f"# {self.title}", ""] + self.notes + [
            "", "| check | expected | observed | result |", "|---|---|---|---|"]
        lines += [f"| {what} | {expected} | {observed} | {result} |"
                  for what, expected, observed, result in self.rows]
        for name, caption in self.pictures:
            lines += ["", f"![{caption}]({name})"]
        if problems:
            lines += ["", "Controller problems:", ""] + [f"    {p}" for p in problems]
        lines += ["", f"{sum(r[-1] == 'PASS' for r in self.rows)} of {len(self.rows)} checks "
                      f"passed; the run took {elapsed:.0f} s."]
        report = self.reports / f"{self.slug}.md"
        report.write_text("\n".join(lines) + "\n")
        width = max([len(r[0]) for r in self.rows] + [5])
        print(f"\n{'check':<{width}}  {'expected':<24}  {'observed':<24}  result")
        for what, expected, observed, result in self.rows:
            print(f"{what:<{width}}  {expected:<24}  {observed:<24}  {result}")
        print(f"\nreport: {report}" + "".join(f", {self.reports / n}" for n, _ in self.pictures))
        for problem in problems:
            print(f"controller problem: {problem}")
        ok = self.passed and not problems
        self.write_record(elapsed)
        print("PASS" if ok else "FAIL", flush=True)
        return 0 if ok else 1

    def write_record(self, elapsed):
        """The checks as a record (bench/record.py) under <reports>/results/, or
        $SDN_RESULTS_DIR."""
        checks = self.record.table("checks", [record.Column(name) for name in (
            "check", "expected", "observed", "result")])
        for row in self.rows:
            checks.add(*row)
        total = self.record.table("the run", [
            record.Column("checks"), record.Column("passed"), record.Column("time", "s")])
        total.add(len(self.rows), sum(r[-1] == "PASS" for r in self.rows), round(elapsed))
        self.record.write(record.directory(self.reports / "results"))


def command_line(doc):
    """A lab's command line: the first line of its docstring as the description and
    --reports, where the report goes (tests point it at a temporary folder); the lab
    adds its own options."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--reports", default="reports", help="where the report goes")
    return parser


def pyplot():
    """matplotlib's pyplot drawing to files (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_diagram(fig, ax, path, title, xlim, ylim):
    """A network drawing: equal axes without ticks, titled, written to `path`."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
