// The controller's web console: plain JavaScript over the REST API, no build step.
// Every view reads the same routes the CLI does; a change is the same PUT/DELETE, and an
// error is shown as the API gave it ({"error": ..., "status": ...}).
"use strict";

const REFRESH_MS = 2000;
const state = { view: "topology", switches: [] };

// --- the API -----------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  const token = sessionStorage.getItem("sdn-token");
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401) document.getElementById("token-box").hidden = false;
  if (!response.ok) {
    const message = data && data.error ? data.error : `${method} ${path}: HTTP ${response.status}`;
    throw new ApiFailure(response.status, message);
  }
  return data;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

// --- rendering helpers ------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function cell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// A list of objects as a table (columns: every key seen), anything else as JSON.
function table(rows, id) {
  if (!Array.isArray(rows) || rows.length === 0 || typeof rows[0] !== "object") {
    return el("pre", id ? { id } : {}, JSON.stringify(rows, null, 1));
  }
  const columns = [...new Set(rows.flatMap(Object.keys))];
  const head = el("tr", {}, ...columns.map(c => el("th", {}, c)));
  const body = rows.map(r => el("tr", {}, ...columns.map(c => el("td", {}, cell(r[c])))));
  return el("table", id ? { id } : {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function fill(id, ...nodes) {
  const box = document.getElementById(id);
  box.replaceChildren(...nodes);
}

// --- views ------------------------------------------------------------------------

function switchLabel(s) { return s.name ? `${s.name} (${s.dpid})` : s.dpid; }

async function loadSwitches() {
  const rows = await api("GET", "/v1/runtime/switches");
  let names = {};
  try {
    const topo = await api("GET", "/v1/topology");
    for (const s of topo.switches) names[s.dpid] = s.name;
  } catch (e) { /* no topology app: dpids only */ }
  state.switches = rows.map(r => ({ dpid: r.dpid, name: r.name || names[r.dpid] || null,
                                    apps: r.apps, reconciled: r.reconciled }));
  return state.switches;
}

function layout(switches, width, height) {
  const places = {};
  const n = switches.length;
  const radius = Math.min(width, height) / 2 - 90;
  switches.forEach((s, i) => {
    const angle = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
    places[s.dpid] = n === 1 ? { x: width / 2, y: height / 2 }
      : { x: width / 2 + radius * Math.cos(angle), y: height / 2 + radius * Math.sin(angle) };
  });
  return places;
}

// Port byte counters at the last look: "dpid:port" -> {bytes, at} where `at` is the
// port's own age (duration_s), so the rate is the switch's, whatever the page's timing.
// A port whose age or counter went back (the switch reconnected) starts over.
const lastCounters = {};

async function linkLoads(switches) {
  const rates = {};
  const read = s => api("GET", `/v1/runtime/switches/${s.dpid}/ports`)
    .then(r => ({ dpid: s.dpid, ports: r.ports }), () => ({ dpid: s.dpid, ports: [] }));
  for (const { dpid, ports } of await Promise.all(switches.map(read))) {
    for (const p of ports) {
      const key = `${dpid}:${p.port}`;
      const before = lastCounters[key];
      if (before && p.duration_s > before.at && p.tx_bytes >= before.bytes) {
        rates[key] = 8 * (p.tx_bytes - before.bytes) / (p.duration_s - before.at);
      }
      lastCounters[key] = { bytes: p.tx_bytes, at: p.duration_s };
    }
  }
  return rates;
}

function rateText(bits) {
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(1)} Mbit/s`;
  if (bits >= 1e3) return `${(bits / 1e3).toFixed(0)} kbit/s`;
  return `${Math.round(bits)} bit/s`;
}

async function viewTopology() {
  const picture = document.getElementById("topology");
  let topo;
  try {
    topo = await api("GET", "/v1/topology");
  } catch (e) {
    if (e.status !== 404) throw e;
    const switches = await loadSwitches();  // without the topology app: switches only
    topo = { switches: switches.map(s => ({ dpid: s.dpid, name: s.name, ports: [] })),
             links: [], hosts: [], missing: "the topology app is not loaded: no links or hosts" };
  }
  const width = 800, height = 500;
  const places = layout(topo.switches, width, height);
  const rates = topo.links.length ? await linkLoads(topo.switches) : {};
  const nodes = [];
  for (const link of topo.links) {
    const a = places[link.a.dpid], b = places[link.b.dpid];
    if (!a || !b) continue;
    const ends = [`${link.a.dpid}:${link.a.port}`, `${link.b.dpid}:${link.b.port}`];
    nodes.push(svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y,
                             class: link.in_tree ? "tree" : "blocked",
                             "data-a": ends[0], "data-b": ends[1] }));
    if (ends.some(e => e in rates)) {
      const load = Math.max(...ends.map(e => rates[e] || 0));
      nodes.push(svg("text", { x: (a.x + b.x) / 2 + 6, y: (a.y + b.y) / 2 - 6, class: "load",
                               "data-bits": Math.round(load) }, rateText(load)));
    }
  }
  const perSwitch = {};
  for (const host of topo.hosts || []) {
    const at = places[host.dpid];
    if (!at) continue;
    const k = perSwitch[host.dpid] = (perSwitch[host.dpid] || 0) + 1;
    const angle = Math.atan2(at.y - height / 2, at.x - width / 2) + (k - 1) * 0.45 - 0.45;
    const x = at.x + 70 * Math.cos(angle), y = at.y + 70 * Math.sin(angle);
    nodes.push(svg("line", { x1: at.x, y1: at.y, x2: x, y2: y, class: "host-link" }));
    const g = svg("g", { class: "host", "data-mac": host.mac });
    g.append(svg("circle", { cx: x, cy: y, r: 7 }),
             svg("text", { x: x + 9, y: y + 4 }, `${host.mac} p${host.port}`));
    nodes.push(g);
  }
  for (const s of topo.switches) {
    const at = places[s.dpid];
    const g = svg("g", { class: "switch", "data-dpid": s.dpid });
    g.append(svg("rect", { x: at.x - 40, y: at.y - 14, width: 80, height: 28, rx: 5 }),
             svg("text", { x: at.x, y: at.y + 4, "text-anchor": "middle" },
                 s.name || s.dpid.replace(/^0+(?=.)/, "")));
    nodes.push(g);
  }
  picture.replaceChildren(...nodes);
  markTrace();
  traceHosts(topo);
  const rows = topo.switches.map(s => ({
    dpid: s.dpid, name: s.name, ports: (s.ports || []).map(p => `${p.port}:${p.role}`).join(" ") }));
  fill("topology-table", ...(topo.missing ? [el("p", { class: "hint" }, topo.missing)] : []),
       table(rows, "switch-list"));
}

// --- trace: where a packet from a host goes (POST /v1/trace, controller/trace.py) ----

// A host as the trace form offers it: "dpid|port|mac".
function hostValue(h) { return `${h.dpid}|${h.port}|${h.mac}`; }

function traceHosts(topo) {
  const names = Object.fromEntries(topo.switches.map(s => [s.dpid, s.name || s.dpid]));
  const seen = new Map();
  for (const h of topo.hosts || []) seen.set(hostValue(h), h);
  const hosts = [...seen.values()];
  const options = hosts.map(h => [hostValue(h), `${h.mac} at ${names[h.dpid] || h.dpid} port ${h.port}`]);
  for (const [id, extra] of [["trace-from", []],
                             ["trace-to", [["||ff:ff:ff:ff:ff:ff", "broadcast ff:ff:ff:ff:ff:ff"]]]]) {
    const select = document.getElementById(id);
    const wanted = select.value;
    const all = [...options, ...extra];
    const now = all.map(([value]) => value).join(" ");
    if (select.dataset.options === now) continue;   // unchanged: keep the user's choice
    select.dataset.options = now;
    select.replaceChildren(...all.map(([value, label]) => el("option", { value }, label)));
    if (all.some(([value]) => value === wanted)) select.value = wanted;
  }
  document.getElementById("trace-hint").hidden = hosts.length > 0;
}

// The last trace, drawn again on every refresh of the picture.
let lastTrace = null;

function markTrace() {
  if (!lastTrace) return;
  const ends = new Set();
  for (const hop of lastTrace.hops) {
    for (const out of hop.outputs) {
      if (out.to) ends.add(`${out.dpid}:${out.port}|${out.to.dpid}:${out.to.port}`);
    }
  }
  for (const line of document.querySelectorAll("#topology line[data-a]")) {
    const a = line.dataset.a, b = line.dataset.b;
    line.classList.toggle("traced", ends.has(`${a}|${b}`) || ends.has(`${b}|${a}`));
  }
  const reached = new Set(lastTrace.hops.map(h => h.dpid));
  for (const g of document.querySelectorAll("#topology g.switch")) {
    g.classList.toggle("on-path", reached.has(g.dataset.dpid));
  }
}

function hopFate(hop) {
  if (hop.error) return hop.error;
  const outs = hop.outputs.map(o => {
    const port = `port ${o.port === null ? "dp " + o.dp_port : o.port}${o.name ? ` (${o.name})` : ""}`;
    const vlan = o.vlan === null || o.vlan === undefined ? "untagged" : `VLAN ${o.vlan}`;
    return o.to ? `${port} ${vlan} to ${o.to.dpid} port ${o.to.port}` : `${port} ${vlan}, leaves the fabric`;
  });
  if (hop.to_controller) outs.push("to the controller");
  if (hop.dropped) return "dropped";
  return "out: " + outs.join("; ");
}

function showTrace(result) {
  const parts = [el("p", { class: "hint" }, `packet: ${result.packet}`)];
  for (const hop of result.hops) {
    parts.push(el("h3", { class: "trace-hop", "data-dpid": hop.dpid },
                  `${hop.name || hop.dpid}, in port ${hop.in_port}${hop.revisit ? " (again)" : ""}: ` +
                  hopFate(hop)));
    if (hop.rules.length) {
      parts.push(table(hop.rules.map(r => ({ bridge: r.bridge,
        table: r.table_name ? `${r.table} (${r.table_name})` : r.table, owner: r.owner,
        priority: r.priority, match: r.match === null ? "(no match)" : r.match,
        actions: r.actions.join(" ") }))));
    }
  }
  const left = result.delivered.map(d => `${d.bridge} port ${d.port}${d.name ? ` (${d.name})` : ""}`);
  parts.push(el("p", { class: "trace-delivered" },
                left.length ? `leaves the fabric at: ${left.join(", ")}` : "reaches no host"));
  if (result.truncated) parts.push(el("p", { class: "hint" }, "stopped after 64 switches"));
  fill("trace-result", ...parts);
}

async function runTrace(event) {
  event.preventDefault();
  // a learned host from the lists, or any port and MACs typed in (each typed field
  // overrides its part of the choice; the API checks them and says what is wrong)
  let [dpid, port, mac] = document.getElementById("trace-from").value.split("|");
  let to = document.getElementById("trace-to").value.split("|")[2];
  const typed = id => document.getElementById(id).value.trim();
  port = /^[0-9]+$/.test(port || "") ? Number(port) : port;
  if (typed("trace-switch")) dpid = typed("trace-switch");
  if (typed("trace-port")) port = /^[0-9]+$/.test(typed("trace-port")) ? Number(typed("trace-port"))
                                                                      : typed("trace-port");
  if (typed("trace-src-mac")) mac = typed("trace-src-mac");
  if (typed("trace-dst-mac")) to = typed("trace-dst-mac");
  const body = { switch: dpid, in_port: port, dl_src: mac, dl_dst: to };
  const proto = document.getElementById("trace-proto").value;
  if (proto) body.proto = proto;
  for (const [id, key, number] of [["trace-nw-src", "nw_src"], ["trace-nw-dst", "nw_dst"],
                                   ["trace-tp-dst", "tp_dst", true]]) {
    const value = document.getElementById(id).value.trim();
    if (value) body[key] = number && /^[0-9]+$/.test(value) ? Number(value) : value;
  }
  const problem = document.getElementById("trace-error");
  try {
    lastTrace = await api("POST", "/v1/trace", body);
  } catch (e) {
    problem.textContent = e.message;
    problem.hidden = false;
    return;
  }
  problem.hidden = true;
  showTrace(lastTrace);
  markTrace();
}

// The entries seen at the last look, by switch: key -> packet count.
const lastLook = {};

function entryKey(f) { return `${f.table}|${f.priority}|${f.match}|${f.cookie}|${f.actions}`; }

async function viewPipeline() {
  const switches = await loadSwitches();
  const select = document.getElementById("pipeline-switch");
  const chosen = select.value;
  select.replaceChildren(...switches.map(s => el("option", { value: s.dpid }, switchLabel(s))));
  if (chosen && switches.some(s => s.dpid === chosen)) select.value = chosen;
  if (!select.value) { fill("pipeline-tables", el("p", { class: "hint" }, "no switch is connected")); return; }
  const dpid = select.value;
  const view = await api("GET", `/v1/runtime/switches/${encodeURIComponent(dpid)}/flows`);
  if (select.value !== dpid || state.view !== "pipeline") return;  // chosen otherwise meanwhile
  const before = lastLook[dpid];
  const now = {};
  const byTable = new Map();
  for (const f of view.flows) {
    now[entryKey(f)] = f.n_packets;
    const name = `table ${f.table} (${f.table_name})`;
    if (!byTable.has(name)) byTable.set(name, []);
    byTable.get(name).push(f);
  }
  const sections = [];
  for (const [name, flows] of byTable) {
    const rows = flows.map(f => {
      const key = entryKey(f);
      const mark = !before ? "" : !(key in before) ? "new" : before[key] !== f.n_packets ? "ticking" : "";
      return el("tr", { class: mark, "data-owner": f.owner },
                ...[f.owner, f.priority, f.match || "(any)", f.actions, f.n_packets]
                  .map(v => el("td", {}, cell(v))));
    });
    sections.push(el("h3", { class: "table-name" }, name),
                  el("table", { class: "entries" },
                     el("thead", {}, el("tr", {}, ...["app/purpose", "priority", "match",
                                                       "actions", "packets"].map(c => el("th", {}, c)))),
                     el("tbody", {}, ...rows)));
  }
  if (before) {
    const gone = Object.keys(before).filter(k => !(k in now));
    if (gone.length) sections.push(el("h3", { class: "table-name" }, "gone since the last look"),
                                   table(gone.map(k => ({ entry: k.replaceAll("|", "  ") })), "gone"));
  }
  lastLook[dpid] = now;
  fill("pipeline-tables", ...sections);
}

async function viewVlans() {
  const switches = await loadSwitches();
  const select = document.getElementById("vlan-switch");
  const chosen = select.value;
  select.replaceChildren(...switches.map(s => el("option", { value: s.dpid }, switchLabel(s))));
  if (chosen) select.value = chosen;
  const members = await api("GET", "/v1/vlans");
  const rows = [];
  for (const [vlan, ports] of Object.entries(members)) {
    for (const p of ports) rows.push({ vlan: Number(vlan), dpid: p.dpid, port: p.port,
                                       name: p.name, tagged: p.tagged });
  }
  fill("vlans-table", table(rows, "vlan-members"));
}

async function setVlan(event) {
  event.preventDefault();
  const form = document.getElementById("vlan-form");
  const dpid = form.switch.value, port = form.port.value.trim();
  const result = document.getElementById("vlan-result");
  let body;
  if (form.mode.value === "access") {
    const text = form.tag.value.trim();
    body = { tag: /^-?\d+$/.test(text) ? Number(text) : text };
  } else {
    const text = form.trunks.value.trim();
    body = { trunks: text === "" ? [] : text.split(",").map(t => t.trim())
                                          .map(t => (/^-?\d+$/.test(t) ? Number(t) : t)) };
  }
  let answer;
  try {
    answer = await api("PUT", `/v1/switches/${encodeURIComponent(dpid)}/ports/` +
                              `${encodeURIComponent(port)}/vlan`, body);
  } catch (e) {
    result.textContent = "";
    showError(e.message);
    return;
  }
  result.textContent = `port ${answer.port} is now ${answer.mode}` +
    (answer.mode === "access" ? ` of VLAN ${answer.tag}`
                              : ` of ${answer.trunks.length ? answer.trunks.join(",") : "every VLAN"}`);
  showError("");
  await refresh();
}

async function clearVlan() {
  const form = document.getElementById("vlan-form");
  try {
    await api("DELETE", `/v1/switches/${encodeURIComponent(form.switch.value)}/ports/` +
                        `${encodeURIComponent(form.port.value.trim())}/vlan`);
  } catch (e) { showError(e.message); return; }
  showError("");
  await refresh();
}

async function viewJson(path, id, pick) {
  try {
    const data = await api("GET", path);
    fill(id, table(pick ? pick(data) : data));
  } catch (e) {
    if (e.status === 404) fill(id, el("p", { class: "hint" }, `${path}: the app is not loaded`));
    else throw e;
  }
}

async function viewSecurity() {
  // every group's rules in one table (a group is a name on its rules), then the ports
  await viewJson("/v1/security", "security-rules",
                 s => Object.values(s.groups).flat());
  await viewJson("/v1/security", "security-ports", s => s.ports);
}

async function viewLb() {
  // the VIPs, then how each one's select group spread the traffic: a row per backend
  // with its bucket's counters and its share of the VIP's packets
  await viewJson("/v1/lb/vips", "lb-table");
  let vips;
  try { vips = await api("GET", "/v1/lb/vips"); } catch (e) { return; }   // said above
  const rows = [];
  for (const vip of vips) {
    const stats = await api("GET", `/v1/lb/vips/${vip.id}/stats`);
    const total = stats.backends.reduce((sum, b) => sum + (b.packets || 0), 0);
    for (const b of stats.backends) {
      rows.push({ vip: `${stats.vip}:${stats.port}`, backend: `${b.ip}:${b.port}`,
                  weight: b.weight, healthy: b.healthy, packets: b.packets, bytes: b.bytes,
                  share: total ? `${Math.round(100 * b.packets / total)}%` : "-" });
    }
  }
  fill("lb-spread", rows.length ? table(rows, "lb-spread-table")
                                : el("p", { class: "hint" }, "no VIP yet"));
}

async function viewOverlay() {
  // one read, three tables: the hypervisors with their tunnels, the tenants, the ports
  await viewJson("/v1/overlay", "overlay-table", o => o.hypervisors || o);
  await viewJson("/v1/overlay", "overlay-networks", o => o.networks || []);
  await viewJson("/v1/overlay", "overlay-ports", o => o.ports || []);
}

async function viewRouter() {
  // one read, four tables: the gateways, the routes, the floating IPs, the hosts it knows
  await viewJson("/v1/router", "router-interfaces", r => r.interfaces.map(
    i => ({ ...i, address6: i.address6 || "", snat: r.snat.includes(i.vlan), mac: r.mac })));
  await viewJson("/v1/router", "router-routes", r => r.routes);
  await viewJson("/v1/router", "router-floating", r => r.floating_ips);
  await viewJson("/v1/router", "router-neighbours", r => r.neighbours);
}

async function viewRuntime() {
  await viewJson("/v1/runtime/switches", "runtime-table",
                 rows => rows.map(r => ({ dpid: r.dpid, reconciled: r.reconciled, ...r.apps })));
  await viewJson("/v1/config", "config-table", c => [c]);
}

// --- changes: every write the API documents for an app, as a form ----------------
// The forms come from the served OpenAPI document (its tags name the apps), so an app
// that gains a route gains its form without console code.

let openapi = null;

async function writesOf(tag) {
  if (openapi === null) openapi = await api("GET", "/v1/openapi.json");
  const found = [];
  for (const [path, item] of Object.entries(openapi.paths)) {
    for (const method of ["post", "put", "patch", "delete"]) {
      const op = item[method];
      if (op && op["x-read-only"]) continue;   // a question asked by POST (a trace)
      if (op && (op.tags || []).includes(tag)) found.push({ method: method.toUpperCase(), path, op });
    }
  }
  return found;
}

function exampleBody(op) {
  const content = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (!content) return null;
  let schema = content.schema || {};
  if (schema.$ref) schema = schema.$ref.split("/").slice(1).reduce((o, k) => o[k], openapi);
  const body = {};
  for (const name of schema.required || []) body[name] = "";
  return JSON.stringify(body);
}

async function buildChanges(box) {
  if (box.dataset.built) return;
  const writes = await writesOf(box.dataset.tag);   // may fail (no token yet): built later
  box.dataset.built = "1";
  if (!writes.length) return;
  const select = el("select", { class: "operation" },
                    ...writes.map((w, i) => el("option", { value: i }, `${w.method} ${w.path}`)));
  const params = el("span", { class: "params" });
  const body = el("textarea", { class: "body", spellcheck: "false" });
  const send = el("button", { type: "button", class: "send" }, "Send");
  const answer = el("pre", { class: "answer", hidden: "" });
  // the form's own error: the views' refreshes clear the page's, not this one
  const problem = el("p", { class: "form-error", role: "alert", hidden: "" });
  const say = message => { problem.textContent = message; problem.hidden = !message; };
  const summary = el("p", { class: "hint summary" });
  const choose = () => {
    const w = writes[select.value];
    summary.textContent = w.op.summary || "";
    params.replaceChildren(...[...w.path.matchAll(/{(\w+)}/g)].map(m => el("label", { class: "param" },
      `${m[1]} `, el("input", { name: m[1], size: 14 }))));
    const example = exampleBody(w.op);
    body.hidden = example === null;
    body.value = example || "";
  };
  select.addEventListener("change", choose);
  send.addEventListener("click", async () => {
    const w = writes[select.value];
    let path = w.path;
    for (const input of params.querySelectorAll("input")) {
      path = path.replace(`{${input.name}}`, encodeURIComponent(input.value.trim()));
    }
    let parsed;
    if (!body.hidden) {
      try { parsed = JSON.parse(body.value); }
      catch (e) { say(`the body is not JSON: ${e.message}`); return; }
    }
    let result;
    try {
      result = await api(w.method, path, parsed);
    } catch (e) {
      answer.hidden = true;
      say(e.message);
      return;
    }
    answer.textContent = `${w.method} ${path}\n` + JSON.stringify(result, null, 1);
    answer.hidden = false;
    say("");
    await refresh();
  });
  box.replaceChildren(el("h2", {}, "Change"), select, summary, params, el("br"), body, el("br"),
                      send, problem, answer);
  choose();
}

async function viewLabs() {
  const found = await api("GET", "/v1/labs/reports");
  if (!found.length) {
    fill("labs-table", el("p", { class: "hint" }, "no lab has written a report yet"));
    return;
  }
  const rows = found.map(r => {
    const link = el("a", { href: "#labs", "data-slug": r.slug }, r.title);
    link.addEventListener("click", async event => {
      event.preventDefault();
      const shown = document.getElementById("lab-report");
      shown.textContent = (await api("GET", `/v1/labs/reports/${encodeURIComponent(r.slug)}`)).markdown;
      shown.hidden = false;
    });
    return el("tr", { class: r.ok ? "" : "failed" }, el("td", {}, link),
              el("td", {}, r.ok ? "PASS" : "FAIL"),
              el("td", {}, r.checks === null ? "" : `${r.passed} of ${r.checks}`),
              el("td", {}, new Date(r.modified * 1000).toLocaleString()));
  });
  fill("labs-table", el("table", { id: "lab-list" },
       el("thead", {}, el("tr", {}, ...["lab", "result", "checks", "written"].map(c => el("th", {}, c)))),
       el("tbody", {}, ...rows)));
}

const VIEWS = {
  topology: viewTopology,
  pipeline: viewPipeline,
  vlans: viewVlans,
  qos: () => viewJson("/v1/qos", "qos-table"),
  lb: viewLb,
  overlay: viewOverlay,
  bonds: () => viewJson("/v1/bonds", "bonds-table"),
  security: viewSecurity,
  router: viewRouter,
  runtime: viewRuntime,
  labs: viewLabs,
};

// One refresh at a time: a slow switch (up to 5 s before its 504) must not pile them up.
// One asked for meanwhile (another tab shown, a change made) runs right after, once.
let refreshing = null;
let wanted = false;

function refresh() {
  if (refreshing) {
    wanted = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      await VIEWS[state.view]();
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
      showError("");
    } catch (e) {
      showError(e.message);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing.then(() => {
    if (wanted) {
      wanted = false;
      return refresh();
    }
  });
}

function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.classList.toggle("active", b.dataset.view === view);
  }
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${view}`;
  for (const box of document.querySelectorAll(`#view-${view} .changes`)) {
    buildChanges(box).catch(e => showError(e.message));
  }
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("#tabs button")) {
    b.addEventListener("click", () => show(b.dataset.view));
  }
  document.getElementById("vlan-form").addEventListener("submit", setVlan);
  document.getElementById("vlan-clear").addEventListener("click", clearVlan);
  document.getElementById("trace-form").addEventListener("submit", runTrace);
  document.getElementById("token-save").addEventListener("click", () => {
    sessionStorage.setItem("sdn-token", document.getElementById("token").value);
    document.getElementById("token-box").hidden = true;
    refresh();
  });
  const wanted = location.hash.replace("#", "");
  show(VIEWS[wanted] ? wanted : "topology");
  // the topology refreshes by itself; the forms' views refresh when shown or changed
  document.getElementById("pipeline-switch").addEventListener("change", refresh);
  setInterval(() => { if (["topology", "pipeline", "runtime"].includes(state.view)) refresh(); },
              REFRESH_MS);
});
