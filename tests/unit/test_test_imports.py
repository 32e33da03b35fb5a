"""Test modules share helpers through tests/support/ only: no test module (nor a support
module) imports from a test module, so each can change or go without breaking another."""
import ast
import pathlib

TESTS = pathlib.Path(__file__).resolve().parents[1]
TEST_PACKAGES = ("tests.unit", "tests.integration")


def _imported(tree):
    """Every module an import in `tree` names, nested imports too (`from a import b`
    names a.b as well: b may be a module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def offending_imports(root=TESTS):
    found = []
    for path in sorted(root.rglob("*.py")):
        for module in _imported(ast.parse(path.read_text(), str(path))):
            if any(module.startswith(p + ".") for p in TEST_PACKAGES):
                found.append(f"{path.relative_to(root.parent)} imports {module}")
    return found


def test_no_test_module_imports_from_another():
    assert offending_imports() == [], "move the helper to tests/support/"


def test_the_scan_finds_such_an_import(tmp_path):
    (tmp_path / "unit").mkdir()
    (tmp_path / "unit" / "test_a.py").write_text(
        "def test_x():\n    from tests.unit.test_b import helper\n")
    (tmp_path / "unit" / "test_c.py").write_text("from tests.unit import test_b as b\n"
                                                 "from tests.support import wire\n")
    here = tmp_path.name
    assert offending_imports(tmp_path) == [
        f"{here}/unit/test_a.py imports tests.unit.test_b",
        f"{here}/unit/test_a.py imports tests.unit.test_b.helper",
        f"{here}/unit/test_c.py imports tests.unit.test_b"]
