"""A MAC as every app takes it (flows/spec.py normalize_mac): six pairs of ASCII hex
digits separated by ':' or '-', nothing int() would also take."""
import pytest

from flows.spec import normalize_mac


@pytest.mark.parametrize("given, canonical", [
    ("AA-BB-CC-DD-EE-0F", "aa:bb:cc:dd:ee:0f"), ("aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff"),
    ("02:00:00:00:00:0A", "02:00:00:00:00:0a")])
def test_both_spellings_become_one(given, canonical):
    assert normalize_mac(given) == canonical


@pytest.mark.parametrize("bad", [" 2:00:00:00:00:01", "+2:00:00:00:00:01", "-2:00:00:00:00:01",
                                 "02:00:00:00:00:1", "02:00:00:00:00:0g", "02:00:00:00:00:01\n",
                                 "٠٢:00:00:00:00:01", "0200.0000.0001", "", 5, None,
                                 "02:00:00:00:00:01:02"])
def test_anything_else_is_a_value_error(bad):
    with pytest.raises(ValueError):
        normalize_mac(bad)
