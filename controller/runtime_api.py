"""The runtime's own REST routes, next to every app's: the API's OpenAPI document,
config status and reload, readiness per switch, the cluster view, Prometheus
metrics and the web console's files (controller/console/). The runtime
(controller/runtime.py, the registered `data`) serves them on every WSGI application
an app registers with (once each)."""
from importlib import resources

import webob
import webob.exc
import yaml

from controller import cluster_view, lab_reports, metrics, reload, rest, trace

# The API's document and the console's files are package data (setup.cfg), so an
# installed copy serves them too.
OPENAPI = resources.files(__package__).joinpath("openapi.yaml")
CONSOLE = resources.files(__package__).joinpath("console")
# The console's files, by the name in its path: nothing else is served from there.
CONSOLE_FILES = {"index.html": "text/html", "console.js": "application/javascript",
                 "console.css": "text/css"}


def console_file(name: str):
    response = webob.Response(body=CONSOLE.joinpath(name).read_bytes(),
                              content_type=CONSOLE_FILES[name], charset="utf-8")
    response.cache_control = "no-cache"   # a new controller's console, not a stale one
    return response


class RuntimeRest(rest.AppController):
    """`self.app` is the Runtime."""

    @rest.api("openapi", "/v1/openapi.json", methods=["GET"])
    def openapi(self, req, **_):
        return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))

    @rest.api("config", "/v1/config", methods=["GET"])
    def get_config(self, req, **_):
        return self.app.reload.status()

    @rest.api("config_reload", "/v1/config/reload", methods=["POST"])
    def post_reload(self, req, **_):
        result = self.app.reload.reload()
        if not result["ok"]:
            raise rest.ApiError(400, f"{reload.REFUSED_MARK}, the running config stays: "
                                     f"{result['last_error']}")
        return result

    @rest.api("runtime_switches", "/v1/runtime/switches", methods=["GET"])
    def get_switches(self, req, **_):
        return self.app.describe_switches()

    @rest.api("runtime_switch", "/v1/runtime/switches/{dpid}", methods=["GET"])
    def get_switch(self, req, dpid, **_):
        """One switch by any reference (a bridge name or a datapath id): how the CLI
        resolves a name before filtering a listing."""
        wanted = rest.format_dpid(rest.resolve_switch(dpid, self.app.names))
        found = [s for s in self.app.describe_switches() if s["dpid"] == wanted]
        if not found:
            raise rest.ApiError(404, f"no switch {wanted} is connected")
        return found[0]

    @rest.api("runtime_switch_flows", "/v1/runtime/switches/{dpid}/flows", methods=["GET"])
    def get_switch_flows(self, req, dpid, **_):
        return self._read(dpid, self.app.switch_flows)

    @rest.api("runtime_switch_ports", "/v1/runtime/switches/{dpid}/ports", methods=["GET"])
    def get_switch_ports(self, req, dpid, **_):
        return self._read(dpid, self.app.switch_ports)

    def _read(self, dpid, read):
        """A switch by any reference (a bridge name or a datapath id), read by `read`."""
        number = rest.resolve_switch(dpid, self.app.names)
        found = read(number)
        if found is None:
            raise rest.ApiError(404, f"no switch {rest.format_dpid(number)} is connected")
        return dict(found, dpid=rest.format_dpid(number))

    @rest.api("trace", "/v1/trace", methods=["POST"])
    def post_trace(self, req, **_):
        """Where a packet from a switch port goes across the fabric (controller/trace.py):
        ofproto/trace at each switch it reaches, over the topology app's links."""
        body = rest.parse_json_body(req)
        names = self.app.names

        def dpid_of(bridge):
            found = names.by_name().get(bridge, [])
            return found[0] if len(found) == 1 else None

        try:
            request = trace.request_from(body)
            start = rest.resolve_switch(request.switch, names)
            tracer = trace.Tracer(names.name_of, dpid_of, trace.link_ends(self.app.links))
            return tracer.run(start, request)
        except trace.TraceError as err:
            raise rest.ApiError(err.status, err.message) from None

    @rest.api("lab_reports", "/v1/labs/reports", methods=["GET"])
    def get_lab_reports(self, req, **_):
        return lab_reports.reports(self.api_settings.lab_reports)

    @rest.api("lab_report", "/v1/labs/reports/{slug}", methods=["GET"])
    def get_lab_report(self, req, slug, **_):
        found = lab_reports.report(self.api_settings.lab_reports, slug)
        if found is None:
            raise rest.ApiError(404, f"no lab report {slug!r}")
        return found

    @rest.api("cluster", "/v1/cluster", methods=["GET"])
    def get_cluster(self, req, **_):
        """200 even when etcd does not answer: this node is alive and says why it
        cannot see the rest (in "problems"), docs/cluster-view.md."""
        return cluster_view.describe(self.app)

    # The console's page and scripts hold no data, so they are served without the
    # token; everything they show comes from the API routes, which ask for it.
    @rest.route("console", "/console", methods=["GET"])
    def get_console(self, req, **_):
        return console_file("index.html")

    @rest.route("console_file", "/console/{name}", methods=["GET"],
                requirements={"name": "|".join(n.replace(".", r"\.") for n in CONSOLE_FILES)})
    def get_console_file(self, req, name, **_):
        return console_file(name)

    @rest.route("console_home", "/", methods=["GET"])
    def get_home(self, req, **_):
        return webob.exc.HTTPFound(location="/console")

    @rest.api("metrics", "/metrics", methods=["GET"])
    def get_metrics(self, req, **_):
        response = webob.Response(body=metrics.exposition())
        response.headers["Content-Type"] = metrics.CONTENT_TYPE
        return response
