"""`make lab-lb`: load balancing behind a virtual IP with an OpenFlow select group.

VIP 10.0.0.100:80 (nat) over four backends b1..b4 answering HTTP with their names.
Client c1 sends requests; the lab checks the spread (equal weights, then 3:1:1:1),
that the client only ever sees the VIP, that a backend whose server stops is taken
out within interval + timeout + 1 s with no request failing, and that it comes back.
Writes reports/lb-lab.md with a bar chart of requests per backend and phase
(reports/lb-lab.png).
"""
import re
import sys
import time

from mininet_topos import harness
from mininet_topos.labs import LabRun, command_line, pyplot
from mininet_topos.topos import LB_LAB_SUBNETS, LbLab

VIP = "10.0.0.100"
BACKENDS = [f"10.0.0.{10 + n}" for n in (1, 2, 3, 4)]
NAMES = ["b1", "b2", "b3", "b4"]
HEALTH = {"interval_s": 0.5, "timeout_s": 0.5}


def vip_body(weights=(1, 1, 1, 1)):
    return {"vip": VIP, "protocol": "tcp", "port": 80, "mode": "nat", "health": HEALTH,
            "backends": [{"ip": ip, "port": 8080, "weight": w}
                         for ip, w in zip(BACKENDS, weights)]}


# what the lab runs the controller with (etc/lb-lab.yaml says the same)
CONFIG = {"l2_switch": {"mode": "datapath"},
          "lb": {"subnets": LB_LAB_SUBNETS, "vips": [vip_body()]}}


def healthy_count(controller):
    return sum(b["healthy"] for b in controller.rest("GET", "/v1/lb/vips/1")[1]["backends"])


def shares(result):
    total = sum(result["served"].values()) or 1
    return {name: result["served"].get(name, 0) / total for name in NAMES}


def spread_check(lab, what, result, expected):
    """expected: {name: share}; each within 10 percentage points."""
    got = shares(result)
    ok = result["failed"] == 0 and all(abs(got[n] - expected[n]) <= 0.10 for n in NAMES)
    lab.check(what, " ".join(f"{n} {expected[n]:.0%}" for n in NAMES) + " (±10 points)",
              " ".join(f"{n} {got[n]:.0%}" for n in NAMES) + f", {result['failed']} failed",
              ok)


def draw(phases, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(phases)
    for index, (label, result) in enumerate(phases):
        ax.bar([i + index * width for i in range(len(NAMES))],
               [result["served"].get(n, 0) for n in NAMES], width, label=label)
    ax.set_xticks([i + width * (len(phases) - 1) / 2 for i in range(len(NAMES))], NAMES)
    ax.set_ylabel("requests served")
    ax.set_title(f"VIP {VIP}:80 over four backends (select group)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(lab, controller, network, requests):
    c1, phases = network["c1"], []
    servers = {n: harness.start_http(network[n], n) for n in NAMES}
    try:
        lab.step("health checks find the four backends")
        found = harness.wait_until(lambda: healthy_count(controller) == 4, 10)
        lab.check("healthy backends", 4, healthy_count(controller), found)

        lab.step(f"{requests} requests from c1, equal weights")
        with harness.Capture([(c1, "c1-eth0")], bpf="tcp") as capture:
            equal = harness.http_requests(c1, VIP, 80, requests)
        phases.append(("weights 1:1:1:1", equal))
        spread_check(lab, "spread, equal weights", equal, dict.fromkeys(NAMES, 0.25))
        sources = {m.group(1) for line in capture.lines["c1-eth0"]
                   for m in [re.search(r" (\d+\.\d+\.\d+\.\d+)\.\d+ > 10\.0\.0\.1\.", line)] if m}
        lab.check("addresses c1 gets replies from", VIP, ",".join(sorted(sources)) or "-",
                  sources == {VIP})

        lab.step("PATCH the weights to 3:1:1:1")
        status, _ = controller.rest("PATCH", "/v1/lb/vips/1",
                                    {"backends": vip_body((3, 1, 1, 1))["backends"]})
        weighted = harness.http_requests(c1, VIP, 80, requests)
        phases.append(("weights 3:1:1:1", weighted))
        spread_check(lab, "spread, weights 3:1:1:1", weighted,
                     {"b1": 0.5, "b2": 1 / 6, "b3": 1 / 6, "b4": 1 / 6})

        lab.step("b4's server stops: out within interval + timeout + 1 s")
        servers["b4"].kill()
        servers["b4"].wait()
        stopped = time.monotonic()
        out = harness.wait_until(lambda: healthy_count(controller) == 3, 5, step=0.05)
        took = time.monotonic() - stopped
        lab.check("b4 taken out", "<= 2.0 s", f"{took:.2f} s" if out else "never",
                  out and took <= 2.0)
        without = harness.http_requests(c1, VIP, 80, requests // 2)
        phases.append(("b4 stopped", without))
        lab.check("requests with b4 out", "0 failed, none to b4",
                  f"{without['failed']} failed, {without['served'].get('b4', 0)} to b4",
                  without["failed"] == 0 and "b4" not in without["served"])

        lab.step("b4's server starts again")
        servers["b4"] = harness.start_http(network["b4"], "b4")
        back = harness.wait_until(lambda: healthy_count(controller) == 4, 5)
        again = harness.http_requests(c1, VIP, 80, requests // 2)
        phases.append(("b4 back", again))
        lab.check("b4 back in the group and serving", "healthy, > 0 requests",
                  f"{'healthy' if back else 'down'}, {again['served'].get('b4', 0)} requests",
                  back and again["served"].get("b4", 0) > 0)
    finally:
        for proc in servers.values():
            proc.kill()
    return phases


def main(argv=None):
    parser = command_line(__doc__)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args(argv)
    lab = LabRun("Load-balancer lab", "lb-lab", args.reports)
    lab.note(f"One switch s1, the learning app (datapath mode) and the load balancer; VIP "
             f"{VIP}:80 in nat mode over b1..b4 (port 8080), health checks every "
             f"{HEALTH['interval_s']} s with a {HEALTH['timeout_s']} s timeout. Requests "
             f"are one HTTP GET per TCP connection from c1.")
    lab.step("starting the controller (l2_switch + lb) and Mininet")
    with harness.running(LbLab(), apps=("apps/l2_switch.py", "apps/lb.py"),
                         config=CONFIG) as (controller, network):
        phases = run(lab, controller, network, args.requests)
        problems = controller.problems()
    draw(phases, lab.picture("lb-lab.png", "requests served per backend, per phase"))
    return lab.finish(problems)


if __name__ == "__main__":
    sys.exit(main())
