"""The labs' latest reports for the web console: the Markdown files `make lab-*` writes
(mininet_topos/labs.py, LabRun.finish) in the folder the `api` section's
`lab_reports` names (default `reports`, where the labs write from the repository)."""
import re
from pathlib import Path
from typing import List, Optional

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TALLY = re.compile(r"^(\d+) of (\d+) checks passed", re.M)


def _summary(path: Path) -> dict:
    text = path.read_text(encoding="utf-8", errors="replace")
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")),
                 path.stem)
    tally = _TALLY.search(text)
    passed, checks = (int(tally.group(1)), int(tally.group(2))) if tally else (None, None)
    return {"slug": path.stem, "title": title, "checks": checks, "passed": passed,
            "ok": tally is not None and passed == checks and "Controller problems:" not in text,
            "modified": path.stat().st_mtime}


def reports(folder: str) -> List[dict]:
    """Every report in `folder`, newest first (none when the folder does not exist)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = []
    for path in root.glob("*.md"):
        if not SLUG.fullmatch(path.stem):
            continue
        try:
            found.append(_summary(path))
        except OSError:   # unreadable, a folder called x.md, a broken link: not a report
            continue
    return sorted(found, key=lambda r: -r["modified"])


def report(folder: str, slug: str) -> Optional[dict]:
    """One report's summary and Markdown text; None when `slug` names none."""
    if not SLUG.fullmatch(slug):
        return None
    path = Path(folder) / f"{slug}.md"
    try:
        return dict(_summary(path), markdown=path.read_text(encoding="utf-8", errors="replace"))
    except OSError:   # none, or not a readable file
        return None
