"""The wheel `pip install` gets: every package, the REST API's document (or an
installed controller answers /v1/openapi.json with 500), the `sdn-controller` entry
point and etc/ under share/. (Running the installed wheel:
tests/integration/test_installed_wheel.py.)"""
import configparser

import pytest

from tests.support.wheel import REPO, build_wheel, wheel_files

PACKAGES = ("flows", "controller", "apps", "mininet_topos", "mininet_topos/labkit", "sdn")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    path = build_wheel(tmp_path_factory.mktemp("wheel"))
    return path.name, wheel_files(path)


def test_the_wheel_holds_every_package_and_module(wheel):
    _, files = wheel
    for package in PACKAGES:
        sources = {p.relative_to(REPO).as_posix() for p in (REPO / package).glob("*.py")}
        assert sources and sources <= set(files), (package, sorted(sources - set(files)))


def test_the_wheel_holds_the_openapi_document_and_the_console_as_in_the_tree(wheel):
    _, files = wheel
    served = ["controller/openapi.yaml"] + [f"controller/console/{name}" for name in
                                            ("index.html", "console.js", "console.css")]
    for path in served:
        assert files[path] == (REPO / path).read_bytes(), path


def test_the_wheel_declares_the_sdn_controller_command(wheel):
    name, files = wheel
    dist_info = name.split("-py3")[0] + ".dist-info"
    entry_points = configparser.ConfigParser()
    entry_points.read_string(files[f"{dist_info}/entry_points.txt"].decode())
    scripts = dict(entry_points["console_scripts"])
    assert scripts["sdn-controller"] == "controller.launcher:main"
    assert scripts["sdn"] == "sdn.main:main"


def test_the_wheel_installs_every_etc_file_under_share(wheel):
    name, files = wheel
    data = name.split("-py3")[0] + ".data/data/share/sdn-ovs-labs/etc/"
    shipped = {n[len(data):]: body for n, body in files.items() if n.startswith(data)}
    in_tree = {p.name: p.read_bytes() for p in (REPO / "etc").iterdir()}
    assert shipped == in_tree
