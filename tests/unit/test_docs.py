"""The user documentation: a short README without development history, a site whose
every page is reachable from its navigation, and a tour that names only ports the
network it runs on has. (`make docs` builds the site strictly; these checks need no
mkdocs.)"""
import re
from pathlib import Path

import yaml

from docs.tools.generate import PAGES
from mininet_topos.topos import Tree

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
ISSUE_REFERENCE = re.compile(r"\bissues?\s*#?\s*\d+", re.IGNORECASE)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def nav_pages(nav):
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            yield from nav_pages(value)
        else:
            yield value


def test_the_readme_is_at_most_250_lines_and_names_no_issues():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250
    assert [line for line in lines if ISSUE_REFERENCE.search(line)] == []


def test_the_site_pages_name_no_issues_of_this_project():
    # upstream bug trackers may be cited with their owner (faucetsdn/ryu #188)
    found = [f"{page.relative_to(ROOT)}: {line.strip()}" for page in DOCS.rglob("*.md")
             for line in page.read_text().splitlines()
             if ISSUE_REFERENCE.search(line) and "/ryu" not in line]
    assert found == []


def test_every_page_under_docs_is_in_the_nav_and_every_nav_page_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs"
    nav = list(nav_pages(config["nav"]))
    generated = {f"reference/{name}" for name in PAGES}
    pages = {str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")}
    assert sorted(pages - set(nav) - generated) == []   # nothing orphaned
    assert sorted(set(nav) - pages - generated) == []   # nothing missing
    assert len(nav) == len(set(nav))


def test_the_readmes_links_point_at_files_that_exist():
    targets = [link.split("#")[0] for link in LINK.findall(README.read_text())
               if "://" not in link and not link.startswith("#")]
    assert targets, "the README links into the documentation"
    assert [t for t in targets if not (ROOT / t).exists()] == []


def test_the_readme_tour_names_only_ports_of_the_tree_it_runs_on():
    text = README.read_text()
    assert "--topo tree,2,2" in text
    topo = Tree(2, 2)
    ports = {f"{node}-eth{number}" for a, b, info in topo.links(withInfo=True)
             for node, number in ((a, info["port1"]), (b, info["port2"]))}
    named = set(re.findall(r"\bs\d+-eth\d+\b", text))
    assert named and named <= ports, sorted(named - ports)
