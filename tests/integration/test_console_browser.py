"""The web console in a real browser (Debian's chromium, driven by selenium through
chromium-driver) against a live Mininet network: the topology shows the switches
Mininet has with the load of the link between them, a VLAN change made in the page
reaches the switch, a trace draws the packet's path, the pipeline view lists what the
switch holds, and a bad value
shows the API's error. With SDN_SCREENSHOT_DIR set, the pages are saved there
(docs/console-*.png come from such a run)."""
import os
import shutil
from pathlib import Path

import pytest

from controller import pipeline
from mininet_topos import harness
from mininet_topos.topos import VLAN_TRUNK_PAIR_CONFIG, VlanTrunkPair

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
    """Until `condition()` holds. The page redraws every 2 s, so an element found a moment
    ago may be gone when read (stale): that look counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException

    def holds():
        try:
            return condition()
        except StaleElementReferenceException:
            return False
    assert harness.wait_until(holds, timeout, step=0.2), condition.__doc__


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
    names = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "#topology g.switch text")}
    assert names == {"s1", "s2"}
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
    titles = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "h3.table-name")]
    assert "table 0 (ingress)" in titles and f"table {pipeline.table_id('flood')} (flood)" in titles, titles
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
