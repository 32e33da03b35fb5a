import pytest

from controller import fastpath


@pytest.fixture(autouse=True)
def _no_fast_path_left_over():
    """An app a test built registers its packet-in handler process-wide
    (controller/fastpath.py): the next test starts without it."""
    yield
    fastpath.reset()
