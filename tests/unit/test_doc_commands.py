"""The reader of the pages' by-hand scenarios (tests/support/doc_commands.py), on small
pages and on the real ones (tests/integration/test_doc_commands_ovs.py runs them)."""
import pytest

from tests.support import doc_commands
from tests.support.doc_commands import Expect, parse

FENCE = "```"


def page(*parts):
    return "\n".join(parts) + "\n"


SMALL = page(
    "# A page", "", "## Run it", "",
    f"{FENCE}sh", "make demo", FENCE, "",
    "## The same by hand", "",
    "Save this as `lab.yaml`:", "",
    f"{FENCE}yaml", "vlan:", "  ports: []", FENCE, "",
    f"{FENCE}sh",
    "SDN_CONFIG=lab.yaml .venv/bin/ryu-manager apps/l2_switch.py apps/vlan.py",
    "sudo mn --custom mininet_topos/topos.py --topo tree,2,2 \\",
    "        --controller remote,ip=127.0.0.1,port=6653",
    "mininet> pingall                # 0% dropped",
    "mininet> h1 ping -c1 h3         # replies",
    "mininet> h1 ping -c1 h2         # no reply: another VLAN",
    "mininet> h2 python3 -m http.server 8080 &",
    FENCE, "",
    "and then:", "",
    f"{FENCE}sh",
    "curl -s 127.0.0.1:8080/v1/switches      # dpid, max_macs, mac_cap",
    "curl -s -X POST 127.0.0.1:8080/v1/x -d '{\"a\": 1,",
    "     \"b\": \"# not a comment\"}'          # 201, {\"id\": 1}",
    "curl -s -X DELETE 127.0.0.1:8080/v1/x/1   # 409: still in use",
    ".venv/bin/sdn switches; .venv/bin/sdn macs 2   # the same as tables",
    FENCE, "",
    "## REST", "",
    f"{FENCE}sh", "curl -s 127.0.0.1:8080/v1/other   # 201 {\"id\": 1, \"method\": \"dp_hash\"}",
    FENCE)


def test_a_page_gives_its_controller_config_network_and_commands():
    scenario = parse(SMALL, "small.md")
    assert scenario.section == "The same by hand" and scenario.problems == []
    assert scenario.controller.apps == ("apps/l2_switch.py", "apps/vlan.py")
    assert scenario.config_text == "vlan:\n  ports: []\n"
    assert (scenario.topology.custom, scenario.topology.topo) == \
        ("mininet_topos/topos.py", "tree,2,2")
    assert [(c.kind, c.line) for c in scenario.commands] == [
        ("mininet", 22), ("mininet", 23), ("mininet", 24), ("mininet", 25),
        ("shell", 31), ("shell", 32), ("shell", 34), ("shell", 35), ("shell", 41)]
    pingall, replies, no_reply, background, get, post, delete, sdn, later = \
        scenario.commands
    assert pingall.expect == Expect(exit=None, loss=0.0)
    assert replies.text == "h1 ping -c1 h3" and replies.expect == Expect(exit=0)
    assert no_reply.expect == Expect(exit="nonzero")
    assert background.background and background.expect.exit is None
    assert get.expect == Expect(exit=0, keys=("max_macs", "mac_cap"))
    assert post.text.endswith('"b": "# not a comment"}\'') and post.expect.status == 201
    assert delete.expect.status == 409
    assert sdn.expect == Expect(exit=0) and sdn.comment == "the same as tables"
    # a later section's example runs against the same network; a quoted value is no key
    assert later.expect == Expect(exit=0, status=201, keys=())


def test_a_here_document_is_a_file_and_the_first_line_may_name_a_yaml_block():
    text = page(
        "## Tour", "",
        f"{FENCE}yaml", "# lb.yaml", "lb: {subnets: [10.0.0.0/24]}", FENCE, "",
        f"{FENCE}sh",
        "cat > /tmp/tour.yaml <<'EOF'",
        "qos: {}      # it's a comment",
        "EOF",
        "SDN_CONFIG=/tmp/tour.yaml .venv/bin/ryu-manager apps/qos.py",
        FENCE,
        f"{FENCE}sh",
        "sudo mn --custom mininet_topos/topos.py --topo single,2 --controller remote",
        "mininet> h1 ping -c1 h2",
        FENCE)
    scenario = parse(text)
    assert scenario.problems == []
    assert scenario.files == {"lb.yaml": "# lb.yaml\nlb: {subnets: [10.0.0.0/24]}\n",
                              "/tmp/tour.yaml": "qos: {}      # it's a comment\n"}
    assert scenario.config_text == "qos: {}      # it's a comment\n"


@pytest.mark.parametrize("line, problem", [
    ("make demo", "unknown command shape: 'make demo'"),
    ("ping -c1 10.0.0.2", "unknown command shape"),
    (".venv/bin/sdn switches; rm -rf /tmp/x", "unknown command shape"),
    ("SDN_CONFIG=missing.yaml .venv/bin/ryu-manager apps/qos.py",
     "SDN_CONFIG=missing.yaml is no file the page saves"),
])
def test_unknown_shapes_are_reported_not_skipped(line, problem):
    text = page("## By hand", "", f"{FENCE}sh", ".venv/bin/ryu-manager apps/l2_switch.py",
                "sudo mn --custom mininet_topos/topos.py --topo single,2", line, FENCE)
    scenario = parse(text, "p.md")
    assert any(problem in p for p in scenario.problems), scenario.problems
    assert all(p.startswith("p.md:") for p in scenario.problems)


def test_mn_options_this_reader_does_not_know_are_reported():
    text = page(f"{FENCE}sh", ".venv/bin/ryu-manager apps/l2_switch.py",
                "sudo mn --custom mininet_topos/topos.py --topo single,2 --link tc", FENCE)
    assert "not supported" in parse(text).problems[0]


def test_a_page_without_a_network_has_no_scenario():
    assert parse(page("# Notes", "", f"{FENCE}sh", "curl -s 127.0.0.1:8080/v1/qos", FENCE)) \
        is None


def test_a_scenario_without_a_controller_says_so():
    text = page(f"{FENCE}sh", "sudo mn --custom mininet_topos/topos.py --topo single,2", FENCE)
    assert "no controller command" in parse(text, "p.md").problems[0]


def test_a_comment_starts_only_outside_quotes_and_after_a_blank():
    split = doc_commands.split_comment
    assert split("curl -d '{\"a\": \"#1\"}'  # 201") == ("curl -d '{\"a\": \"#1\"}'", "201")
    assert split("curl 127.0.0.1:8080/x#y") == ("curl 127.0.0.1:8080/x#y", "")


# every page with a by-hand section, as tests/integration/test_doc_commands_ovs.py runs it
REAL = {s.page: s for s in doc_commands.scenarios()}


def test_every_tutorial_with_a_network_has_a_scenario():
    assert {"README.md", "docs/tutorials/learning-switch.md", "docs/tutorials/vlan.md",
            "docs/tutorials/bond.md", "docs/tutorials/qos.md", "docs/tutorials/lb.md",
            "docs/tutorials/tcpip.md", "docs/tutorials/security.md",
            "docs/tutorials/overlay.md"} <= \
        set(REAL) - set(doc_commands.NOT_RUN)
    assert set(doc_commands.NOT_RUN) <= set(REAL)


@pytest.mark.parametrize("name", sorted(set(REAL) - set(doc_commands.NOT_RUN)))
def test_a_real_page_gives_a_runnable_scenario(name):
    scenario = REAL[name]
    assert scenario.problems == []
    assert scenario.topology is not None
    assert scenario.topology.controller.split(",")[0] in ("remote", "none")
    assert scenario.controller.apps and not scenario.controller.flags
    assert any(c.expect.exit is not None or c.expect.loss is not None
               for c in scenario.commands)
    if scenario.controller.config:
        assert scenario.config_text
