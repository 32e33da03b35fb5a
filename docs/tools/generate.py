"""Write the generated reference pages under docs/reference/ (`make docs` runs this
before mkdocs). The pages are not kept in git: the code and controller/openapi.yaml are.
Then docs/results.md from the records in docs/results/ (docs/tools/results.py): that page
is kept in git, so that it reads on its own; a unit test checks it is what they make."""
import sys
from pathlib import Path

from docs.tools import api_reference, cli_reference, config_reference, results

ROOT = Path(__file__).resolve().parents[2]   # the repository
PAGES = {"config-keys.md": lambda: config_reference.render(ROOT),
         "rest-api.md": lambda: api_reference.render(ROOT / "controller" / "openapi.yaml"),
         "cli.md": cli_reference.render}


def main():
    target = ROOT / "docs" / "reference"
    target.mkdir(exist_ok=True)
    for name, render in PAGES.items():
        (target / name).write_text(render() + "\n")
        print(f"docs: wrote docs/reference/{name}")
    return results.main([])


if __name__ == "__main__":
    sys.exit(main())
