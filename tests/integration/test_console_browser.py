"""The web console in a real browser (Debian's chromium, driven by selenium through
chromium-driver) against a live Mininet network: the topology shows the switches
Mininet has with the load of the link between them, a VLAN change made in the page
reaches the switch, a trace draws the packet's path, the pipeline view lists what the
switch holds, and a bad value shows the API's error; the load balancer's tab shows how
a VIP spread its traffic and offers its PATCH; the overlay's shows the tenants. With SDN_SCREENSHOT_DIR set, the pages are saved there
(docs/console-*.png come from such a run)."""
import os
import shutil
from pathlib import Path

import pytest

from controller import pipeline
from mininet_topos import harness
from mininet_topos.topos import LB_LAB_SUBNETS, VLAN_TRUNK_PAIR_CONFIG, LbLab, VlanTrunkPair
from tests.support.lb_lab import VIP, vip_body, wait_healthy
from tests.support.overlay_lab import start as start_overlay

pytestmark = pytest.mark.integration
APPS = ("apps/l2_switch.py", "apps/vlan.py", "apps/topology.py")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("make setup installs chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, name):
    folder = os.environ.get("SDN_SCREENSHOT_DIR")
    if folder:
        driver.save_screenshot(str(Path(folder) / f"console-{name}.png"))


def wait_for(condition, timeout=10):
    """Until `condition()` holds; what it last returned. The page redraws every 2 s, so
    an element found a moment ago may be gone when read (stale): that look counts as not
    yet. Read the page inside a condition, never after it: the next redraw may come
    between."""
    from selenium.common.exceptions import StaleElementReferenceException
    seen = []

    def holds():
        try:
            seen[:] = [condition()]
        except StaleElementReferenceException:
            seen[:] = [False]
        return seen[0]
    assert harness.wait_until(holds, timeout, step=0.2), condition.__doc__
    return seen[0]


def test_the_console_shows_the_network_and_changes_a_vlan(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    controller, network = lab(VlanTrunkPair(), VLAN_TRUNK_PAIR_CONFIG, apps=APPS)
    harness.wait_vlans_programmed(controller, network)
    # hosts for the picture, once the topology app has decided the trunk's ports
    assert harness.wait_until(lambda: harness.ping(network["h1"], network["h3"]), 15)
    browser.get(f"http://127.0.0.1:{controller.rest_port}/")

    def drawn():
        """the topology draws every switch Mininet has, and the trunk between them"""
        switches = {g.get_attribute("data-dpid")
                    for g in browser.find_elements(By.CSS_SELECTOR, "#topology g.switch")}
        links = browser.find_elements(By.CSS_SELECTOR, "#topology line.tree")
        return switches == {s.dpid for s in network.switches} and len(links) == 1
    wait_for(drawn, 15)
    wait_for(lambda: {e.text for e in browser.find_elements(
        By.CSS_SELECTOR, "#topology g.switch text")} == {"s1", "s2"})
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#topology g.host"))
    # link load from the ports' counters: ~0.8 Mbit/s of pings across the trunk
    pinger = network["h1"].popen(["ping", "-q", "-s", "1000", "-i", "0.01", "-c", "600",
                                  network["h3"].IP()])

    def loaded():
        """the trunk's label shows the pings' load (LLDP alone is a few hundred bit/s)"""
        labels = browser.find_elements(By.CSS_SELECTOR, "#topology text.load")
        return labels and int(labels[0].get_attribute("data-bits")) > 200_000
    try:
        wait_for(loaded, 8)
        screenshot(browser, "topology")
    finally:
        pinger.kill()
        pinger.wait()

    # a trace from h1 to h3: drawn across the trunk, each switch with its entries
    h1, h3, s1, s2 = network["h1"], network["h3"], network["s1"], network["s2"]
    source = f"{s1.dpid}|1|{h1.MAC()}"
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR,
                                           f'#trace-from option[value="{source}"]'))
    Select(browser.find_element(By.ID, "trace-from")).select_by_value(source)
    Select(browser.find_element(By.ID, "trace-to")).select_by_value(f"{s2.dpid}|1|{h3.MAC()}")
    browser.find_element(By.ID, "trace-run").click()

    def traced():
        """the page lists s1 then s2 and draws the trunk between them as the path"""
        hops = [e.get_attribute("data-dpid")
                for e in browser.find_elements(By.CSS_SELECTOR, "#trace-result h3.trace-hop")]
        return hops == [s1.dpid, s2.dpid] and \
            len(browser.find_elements(By.CSS_SELECTOR, "#topology line.traced")) == 1
    wait_for(traced)
    text = browser.find_element(By.ID, "trace-result").text
    assert "VLAN 10" in text and "vlan/" in text, text   # tagged on the trunk, by the VLAN app
    screenshot(browser, "trace")
    # any port, by name, and MACs typed in: h3 back to h1, from s2's s2-eth1
    for field, value in (("trace-switch", "s2"), ("trace-port", "s2-eth1"),
                         ("trace-src-mac", h3.MAC()), ("trace-dst-mac", h1.MAC())):
        browser.find_element(By.ID, field).send_keys(value)
    browser.find_element(By.ID, "trace-run").click()

    def traced_back():
        """the typed-in trace goes s2 then s1"""
        hops = [e.get_attribute("data-dpid")
                for e in browser.find_elements(By.CSS_SELECTOR, "#trace-result h3.trace-hop")]
        return hops == [s2.dpid, s1.dpid]
    wait_for(traced_back)
    for field in ("trace-switch", "trace-port", "trace-src-mac", "trace-dst-mac"):
        browser.find_element(By.ID, field).clear()

    browser.find_element(By.CSS_SELECTOR, '#tabs button[data-view="vlans"]').click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#vlan-members tbody tr"))
    Select(browser.find_element(By.ID, "vlan-switch")).select_by_value(network["s1"].dpid)
    browser.find_element(By.ID, "vlan-port").send_keys("2")
    browser.find_element(By.ID, "vlan-tag").send_keys("10")            # h2 into VLAN 10
    browser.find_element(By.ID, "vlan-set").click()
    wait_for(lambda: "access of VLAN 10" in browser.find_element(By.ID, "vlan-result").text)

    def on_the_switch():
        """s1's ingress table puts port 2's untagged frames into VLAN 10"""
        return any(f.match.get("in_port") == 2 and f.has_action("push_vlan")
                   and "set_field:4106->vlan_vid" in f.actions_text
                   for f in network.flows("s1", table=pipeline.table_id("ingress")))
    wait_for(on_the_switch)
    assert harness.wait_until(lambda: harness.ping(network["h2"], network["h3"]), 5)

    # the pipeline of s1: every entry the switch holds, by table, named by its app
    browser.find_element(By.CSS_SELECTOR, '#tabs button[data-view="pipeline"]').click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#pipeline-switch option"))
    # the select is redrawn with the page: choosing in one that just went stale is retried
    wait_for(lambda: Select(browser.find_element(By.ID, "pipeline-switch")).select_by_value(
        network["s1"].dpid) or True)

    def pipeline_shown():
        """the page lists as many entries as ovs-ofctl dumps, the VLAN app's among them"""
        rows = browser.find_elements(By.CSS_SELECTOR, "#pipeline-tables table.entries tbody tr")
        owners = {row.get_attribute("data-owner") for row in rows}
        return len(rows) == len(network.flows("s1")) and "vlan/default" in owners
    wait_for(pipeline_shown)
    wanted = {"table 0 (ingress)", f"table {pipeline.table_id('flood')} (flood)"}

    def titled():
        """the tables are named (read again if the page redrew them meanwhile: stale)"""
        return wanted <= {e.text for e in browser.find_elements(By.CSS_SELECTOR,
                                                                "h3.table-name")}
    wait_for(titled)
    screenshot(browser, "pipeline")

    browser.find_element(By.CSS_SELECTOR, '#tabs button[data-view="vlans"]').click()
    tag = browser.find_element(By.ID, "vlan-tag")
    tag.clear()
    tag.send_keys("5000")
    browser.find_element(By.ID, "vlan-set").click()
    error = browser.find_element(By.ID, "error")
    wait_for(lambda: error.is_displayed() and "tag must be" in error.text)
    status, body = controller.rest("PUT", "/v1/switches/1/ports/2/vlan", {"tag": 5000})
    assert status == 400 and error.text == body["error"]      # as the API says it
    assert controller.rest("GET", "/v1/switches/1/ports/2/vlan")[1]["tag"] == 10  # unchanged
    screenshot(browser, "error")

    # the generic change form (from the OpenAPI document): the port back to the default
    changes = browser.find_element(By.CSS_SELECTOR, '#view-vlans .changes')
    wait_for(lambda: changes.find_elements(By.CSS_SELECTOR, "select.operation option"))
    Select(changes.find_element(By.CSS_SELECTOR, "select.operation")).select_by_visible_text(
        "DELETE /v1/switches/{dpid}/ports/{port}/vlan")
    changes.find_element(By.NAME, "dpid").send_keys("1")
    changes.find_element(By.NAME, "port").send_keys("2")
    changes.find_element(By.CSS_SELECTOR, "button.send").click()
    answer = changes.find_element(By.CSS_SELECTOR, "pre.answer")
    wait_for(lambda: answer.is_displayed() and '"mode": "trunk"' in answer.text)
    wait_for(lambda: not on_the_switch())
    screenshot(browser, "change-form")


def test_the_console_shows_how_a_vip_spread_its_traffic_and_offers_its_patch(lab, browser):
    """The load-balancer tab: the VIP, and per backend its health, its bucket's packets
    and its share, which match the VIP's own counters over REST; the change forms offer
    every write the API documents for the app, PATCH of a VIP included."""
    from selenium.webdriver.common.by import By
    controller, network = lab(LbLab(), {"l2_switch": {"mode": "datapath"},
                                         "lb": {"subnets": LB_LAB_SUBNETS,
                                                "vips": [vip_body()]}},
                              apps=("apps/l2_switch.py", "apps/lb.py"))
    servers = [harness.start_http(network[f"b{n}"], f"b{n}", 8080) for n in (1, 2, 3, 4)]
    try:
        wait_healthy(controller)
        result = harness.http_requests(network["c1"], VIP, 80, 80)
        assert result["failed"] == 0 and len(result["served"]) == 4, result
        browser.get(f"http://127.0.0.1:{controller.rest_port}/")
        browser.find_element(By.CSS_SELECTOR, '#tabs button[data-view="lb"]').click()

        def spread():
            """the spread table: its columns, and a row per backend with packets counted"""
            heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR,
                                                             "#lb-spread-table thead th")]
            rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in
                    browser.find_elements(By.CSS_SELECTOR, "#lb-spread-table tbody tr")]
            return heads == ["vip", "backend", "weight", "healthy", "packets", "bytes",
                             "share"] and len(rows) == 4 and \
                all(int(r[4] or 0) > 0 for r in rows) and rows
        rows = wait_for(spread, 15)
        stats = controller.rest("GET", "/v1/lb/vips/1/stats")[1]
        shown = {r[1]: int(r[4]) for r in rows}
        counted = {f"{b['ip']}:{b['port']}": b["packets"] for b in stats["backends"]}
        assert set(shown) == set(counted) and all(
            abs(shown[k] - counted[k]) <= 0.2 * counted[k] + 20 for k in shown), (shown, counted)
        print(f"observed: the console's spread of VIP {VIP}: "
              f"{', '.join(f'{r[1]} {r[6]}' for r in rows)}")
        screenshot(browser, "lb-spread")
        operations = wait_for(lambda: [o.text for o in browser.find_elements(
            By.CSS_SELECTOR, "#view-lb .changes select.operation option")])
        assert "PATCH /v1/lb/vips/{vip_id}" in operations, operations
    finally:
        for server in servers:
            server.kill()


def test_the_console_shows_the_overlays_tenants_and_ports(lab, browser, tmp_path):
    """The overlay tab: the hypervisors, the tenants (a row per network with its VNI)
    and the ports, as GET /v1/overlay has them."""
    from selenium.webdriver.common.by import By
    controller, network = start_overlay(lab, tmp_path)
    body = controller.rest("GET", "/v1/overlay")[1]
    browser.get(f"http://127.0.0.1:{controller.rest_port}/")
    browser.find_element(By.CSS_SELECTOR, '#tabs button[data-view="overlay"]').click()

    def rows(box):
        return browser.find_elements(By.CSS_SELECTOR, f"#{box} table tbody tr")

    def shown():
        """a row per hypervisor, tenant and port, and the tenants' VNIs"""
        counts = (len(rows("overlay-table")), len(rows("overlay-networks")),
                  len(rows("overlay-ports")))
        heads = [th.text for th in browser.find_elements(By.CSS_SELECTOR,
                                                         "#overlay-networks thead th")]
        if counts != (len(body["hypervisors"]), len(body["networks"]), len(body["ports"])) \
                or "vni" not in heads:
            return False
        return {tr.find_elements(By.TAG_NAME, "td")[heads.index("vni")].text
                for tr in rows("overlay-networks")}
    vnis = wait_for(shown, 15)
    assert vnis == {str(n["vni"]) for n in body["networks"]} and len(vnis) >= 2, vnis
    print(f"observed: the console's overlay tenants: VNIs {sorted(vnis)}, "
          f"{len(body['ports'])} ports, {len(body['hypervisors'])} hypervisors")
