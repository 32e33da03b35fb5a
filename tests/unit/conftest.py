import pytest

from controller import claims


@pytest.fixture(autouse=True)
def no_switch_claims(monkeypatch):
    """Each test starts with no switch owned outright (apps built by earlier tests
    claimed theirs in the module-wide registry)."""
    for name in ("_owners", "_named", "_names"):
        monkeypatch.setattr(claims, name, {})
    monkeypatch.setattr(claims, "_resolver", None)
