"""The runtime's own REST routes, next to every app's: the API's OpenAPI document,
config status and reload, readiness per switch, the cluster view and Prometheus
metrics. The runtime
(controller/runtime.py, the registered `data`) serves them on every WSGI application
an app registers with (once each)."""
from pathlib import Path

import webob
import yaml

from controller import cluster_view, metrics, reload, rest

OPENAPI = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"


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

    @rest.api("cluster", "/v1/cluster", methods=["GET"])
    def get_cluster(self, req, **_):
        """200 even when etcd does not answer: this node is alive and says why it
        cannot see the rest (in "problems"), docs/cluster-view.md."""
        return cluster_view.describe(self.app)

    @rest.api("metrics", "/metrics", methods=["GET"])
    def get_metrics(self, req, **_):
        response = webob.Response(body=metrics.exposition())
        response.headers["Content-Type"] = metrics.CONTENT_TYPE
        return response
