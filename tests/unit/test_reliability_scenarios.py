"""Every scenario `make reliability` lists names a test that exists (two had gone stale:
a removed test and a parameter dropped), and the tests left out of `make test` as long
are all among them."""
import subprocess
import sys
from pathlib import Path

from bench import reliability

REPO = Path(__file__).resolve().parents[2]


def _collect(*args):
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *args], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    return run, [line for line in run.stdout.splitlines() if "::" in line]


def test_every_scenario_is_a_test_and_every_long_test_a_scenario():
    ids = [scenario[0] for scenario in reliability.SCENARIOS]
    run, collected = _collect(*ids)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert sorted(collected) == sorted(set(ids))
    _, long_tests = _collect("-m", "long", "tests/integration")
    assert long_tests, "no test is marked long"
    assert set(long_tests) <= set(ids), "a long test that no make target runs"
