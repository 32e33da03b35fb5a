"""The project built as a wheel, as `pip wheel .` builds it, from a copy of the tree
(the build writes build/ and *.egg-info next to the sources, and a build/ left over
from an earlier run would put its stale files into the wheel)."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                      ".pytest_cache", "reports", "tests")


def build_wheel(directory: Path) -> Path:
    """Build the project's wheel in `directory` (made fresh); returns its path. No
    build isolation: the venv's setuptools (the old one Ryu's build needs) builds it."""
    source, out = directory / "source", directory / "dist"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCES)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"pip wheel failed:\n{done.stdout}\n{done.stderr}")
    (wheel,) = out.glob("sdn_ovs_labs-*.whl")
    return wheel


def wheel_files(wheel: Path) -> dict:
    """{name in the wheel: bytes}."""
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
