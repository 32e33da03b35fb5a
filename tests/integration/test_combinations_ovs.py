"""The app combination matrix on real OVS (mininet_topos/combinations.py explains which
apps can share what): the `make test` subset. Every combination runs every loaded
app's basic check (learning pings, VLAN isolation, a QoS queue counting its traffic
with nothing lost, a VIP serving, a bond failing over, no storm) and fails listing
every app that broke. The whole matrix (every pair in both modes on both topologies,
the overlay with each app) is `make reliability` (bench/combinations.py)."""
import pytest

from mininet_topos import combinations as matrix

pytestmark = pytest.mark.integration

# every app alone on one switch in both learning modes and on the ring in reactive mode;
# all together once per mode: on the ring in reactive mode, on one switch in datapath
# mode (the other two all-together runs, that mode's apps alone on the ring and the pairs
# are `make reliability`: make test must stay within its time)
ALL_TOGETHER = {("ring", "reactive"), ("single", "datapath")}


def together(c):
    return set(c.apps) >= set(matrix.SHARING)


SUBSET = [c for layout in ("single", "ring") for mode in ("reactive", "datapath")
          for c in matrix.combinations(layout, mode, pairs=False)
          if (not together(c) and (layout, mode) != ("ring", "datapath"))
          or (together(c) and (layout, mode) in ALL_TOGETHER)]


@pytest.mark.parametrize("combination", SUBSET, ids=lambda c: c.id)
def test_every_loaded_app_passes_its_check(combination):
    failures, seconds, problems = matrix.run(combination)
    assert not failures and not problems, "\n".join(failures + problems)


@pytest.mark.parametrize("combination", matrix.overlay_combinations(), ids=lambda c: c.id)
def test_the_overlay_alone_and_beside_every_app(combination, tmp_path):
    failures, seconds, problems = matrix.run_overlay(combination, tmp_path / "hv")
    assert not failures and not problems, "\n".join(failures + problems)
