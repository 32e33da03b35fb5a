"""Commands that reach any app's REST routes with no code of their own per app: the
routes come from the API's own document (GET /v1/openapi.json, where each operation is
tagged with the app that serves it), and `sdn api` sends any request to any of them.

    sdn routes [APP]                      sdn api GET /v1/bonds
    sdn api PUT /v1/bonds/1/bond0 '{"members": ["s1-eth3", "s1-eth4"]}'
"""
import json
import re

from sdn.args import UsageError
from sdn.printing import table

METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")
_PARAMETER = re.compile(r"{[^/{}]+}")


def cmd_api(api, args):
    """One request as given; the reply printed as JSON."""
    if not args.path.startswith("/"):
        raise UsageError(f"api: the path starts with / (e.g. /v1/switches), not {args.path!r}")
    unfilled = _PARAMETER.findall(args.path)
    if unfilled:
        raise UsageError(f"api: fill in {', '.join(unfilled)} in {args.path} (sdn routes "
                         f"lists what each takes)")
    body = None
    if args.body is not None:
        try:
            body = json.loads(args.body)
        except ValueError as err:
            raise UsageError(f"api: the body is not JSON ({err}): {args.body!r}") from None
    reply = api.call(args.method, args.path, body)
    return reply, reply if isinstance(reply, str) else json.dumps(reply, indent=1,
                                                                  sort_keys=True)


def routes(document):
    """Every operation of an OpenAPI document as a row: app (its tag), method, path,
    whether it takes a JSON body, summary; in the document's order of tags, then paths."""
    order = {tag["name"]: index for index, tag in enumerate(document.get("tags") or ())}
    rows = [{"app": (operation.get("tags") or ["-"])[0], "method": method.upper(),
             "path": path, "body": "requestBody" in operation,
             "summary": operation.get("summary")}
            for path, item in (document.get("paths") or {}).items()
            for method, operation in item.items() if method.upper() in METHODS]
    return sorted(rows, key=lambda r: (order.get(r["app"], len(order)), r["path"],
                                       METHODS.index(r["method"])))


def cmd_routes(api, args):
    """The routes the controller serves, per app, from its OpenAPI document."""
    rows = routes(api.call("GET", "/v1/openapi.json"))
    if args.app:
        apps = sorted({r["app"] for r in rows})
        rows = [r for r in rows if r["app"] == args.app]
        if not rows:
            raise UsageError(f"routes: no app {args.app!r} in the API; it has "
                             f"{', '.join(apps)}")
    return rows, table(rows, [("app", "app"), ("method", "method"), ("path", "path"),
                              ("body", lambda r: "JSON" if r["body"] else None),
                              ("summary", "summary")])
