"""controller/openapi.yaml describes exactly the routes the apps and the runtime serve. The
REST controllers are found, not listed: every rest.AppController subclass an apps/
module defines, and the runtime's own."""
import importlib
import inspect
import pkgutil
import sys

import pytest
import yaml

import apps
from controller import rest, runtime_api


def rest_classes():
    """{class: tag}: each apps/ module's REST controllers, tagged with the module's name
    (the app id), and the runtime's, tagged "runtime"."""
    found = {runtime_api.RuntimeRest: "runtime"}
    for info in pkgutil.iter_modules(apps.__path__):
        module = importlib.import_module(f"{apps.__name__}.{info.name}")
        found.update({cls: info.name for _, cls in inspect.getmembers(module, inspect.isclass)
                      if issubclass(cls, rest.AppController) and cls is not rest.AppController
                      and cls.__module__ == module.__name__})
    return found


def served():
    """{(path, method): the tag of the app that serves it}."""
    routes = {}
    for cls, tag in rest_classes().items():
        for _, method in inspect.getmembers(cls, inspect.isfunction):
            info = getattr(method, "routing_info", None)
            if info:
                routes.update({(info["path"], m.lower()): tag for m in info["methods"]})
    return routes


def documented(document):
    """{(path, method): the operation's tags}."""
    return {(path, method): tuple(operation.get("tags") or ())
            for path, item in document["paths"].items()
            for method, operation in item.items() if method != "parameters"}


def mismatches(routes, document):
    """What is served but not documented (or under another app's tag), and the reverse."""
    docs = documented(document)
    return sorted(f"{method.upper()} {path}: served by {tag}, documented as "
                  f"{list(docs.get((path, method), ())) or 'nothing'}"
                  for (path, method), tag in routes.items()
                  if docs.get((path, method)) != (tag,)) + \
        sorted(f"{method.upper()} {path}: documented, not served"
               for path, method in set(docs) - set(routes))


def load():
    return yaml.safe_load(runtime_api.OPENAPI.read_text())


def test_the_documents_tags_are_the_apps_that_serve_routes():
    assert sorted(set(rest_classes().values())) == sorted(t["name"] for t in load()["tags"])


def test_every_route_is_documented_under_its_apps_tag_and_nothing_else():
    assert mismatches(served(), load()) == []


@pytest.mark.parametrize("tag", ["vlan", "bond", "runtime"])
def test_an_undocumented_route_is_found(tag):
    document = load()
    path, method = next(route for route, owner in sorted(served().items()) if owner == tag)
    del document["paths"][path][method]
    assert mismatches(served(), document) == [
        f"{method.upper()} {path}: served by {tag}, documented as nothing"]


def test_a_new_apps_controller_is_found_without_a_list(monkeypatch, tmp_path):
    """A REST controller in a new apps/ module counts: its route is undocumented."""
    (tmp_path / "acl.py").write_text(
        "from controller import rest\n\n\n"
        "class AclRest(rest.AppController):\n"
        "    @rest.api('acl', '/v1/acl', methods=['GET'])\n"
        "    def get(self, req, **_):\n"
        "        return []\n")
    monkeypatch.setattr(apps, "__path__", [*apps.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "apps.acl", raising=False)   # removed again after
    try:
        assert mismatches(served(), load()) == [
            "GET /v1/acl: served by acl, documented as nothing"]
    finally:
        sys.modules.pop("apps.acl", None)


def test_every_operation_documents_its_errors_as_json():
    document = load()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or path == "/v1/openapi.json":
                continue
            assert operation["responses"].get("default") == \
                {"$ref": "#/components/responses/Error"}, (path, method)
