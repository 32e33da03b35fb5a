"""The "by hand" scenario of a documentation page, read from its Markdown: what a new
user types, in order, and what the page says each command answers.

A page's scenario starts in the section (a heading down to the next heading of the same
or a higher level) holding a `sudo mn --custom FILE --topo NAME ...` line, with the `sh`
block that starts the controller, and takes every `sh` block from there to the end of
the page (later sections' examples run against the same network, after the by-hand
steps):

- the controller: `[SDN_CONFIG=FILE] .venv/bin/ryu-manager APP...` (or
  `.venv/bin/sdn-controller APP...`); FILE is a `yaml` block of the page saved under that
  name (the text before the block says "as `FILE`", or its first line is `# FILE`), or
  a `cat > FILE <<'EOF'` here-document in the scenario;
- the network: `sudo mn --custom FILE --topo NAME --controller remote,...`;
- `mininet> ...`: a command typed at Mininet's prompt (`pingall`, `py EXPR`, or a host's
  name and a command run in that host, other hosts' names standing for their IPs);
- shell commands run from the repository's root: `.venv/bin/sdn ...`, `curl ...`,
  `ovs-ofctl`, `ovs-appctl`, `ovs-vsctl` (several joined by `;`).

What each command should answer comes from its trailing `# comment`:

- `# replies`, `# now replies`: exit status 0 (a ping that gets its replies);
- `# no reply`: a nonzero exit status;
- `# 201` (a comment that starts with an HTTP status): curl's answer has that status;
- `# 0% dropped` (pingall): no pair lost;
- on a curl command, every snake_case word of the comment (`max_macs`, `tc_problems`;
  not a quoted value as in `"method": "dp_hash"`) is a key the JSON answer has somewhere;
- otherwise: exit status 0, and for curl a 2xx status; a command ending in `&` runs in
  the background and is not checked.

Lines of a scenario that match none of these shapes are reported in
`Scenario.problems`, never skipped. Pure: reads the Markdown, runs nothing.
"""
import dataclasses
import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# the pages whose by-hand scenarios are run (tests/integration/test_doc_commands_ovs.py)
PAGES = ("README.md", *sorted(str(p.relative_to(REPO))
                              for p in (REPO / "docs" / "tutorials").glob("*.md")))
# pages whose network is not one a new user starts with one `mn` line, and why
NOT_RUN = {}

SHELL_PROGRAMS = (".venv/bin/sdn", "curl", "ovs-ofctl", "ovs-appctl", "ovs-vsctl")
_HEADING = re.compile(r"^(#{1,6})\s")
_FENCE = re.compile(r"^```\s*(\w*)\s*$")
_SAVED_AS = re.compile(r"\bas `([^`]+\.ya?ml)`")
_CONTROLLER = re.compile(
    r"^(?:SDN_CONFIG=(?P<config>\S+)\s+)?\.venv/bin/(?P<program>ryu-manager|sdn-controller)"
    r"\s+(?P<args>.*)$")
_HEREDOC = re.compile(r"^cat > (?P<path>\S+) <<'?(?P<end>\w+)'?$")
_STATUS = re.compile(r"^([1-5]\d\d)\b")
_QUOTED_VALUE = re.compile(r':\s*"[^"]*"')  # `"mode": "dp_hash"`: a value, not a key
_KEY = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


@dataclasses.dataclass(frozen=True)
class Expect:
    """What a command should answer: `exit` 0 or "nonzero" (or None: not checked),
    `status` an HTTP status (curl; None: any 2xx), `keys` JSON keys the answer has,
    `loss` the pingall loss in percent."""
    exit: object = 0
    status: int = None
    keys: tuple = ()
    loss: float = None

    def describe(self):
        parts = []
        if self.exit == "nonzero":
            parts.append("a nonzero exit status")
        elif self.exit == 0:
            parts.append("exit status 0")
        if self.status:
            parts.append(f"HTTP {self.status}")
        if self.keys:
            parts.append("keys " + ", ".join(self.keys))
        if self.loss is not None:
            parts.append(f"{self.loss:g}% dropped")
        return "; ".join(parts) or "nothing (background)"


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of a scenario: `kind` "mininet" (typed at Mininet's prompt, without
    the prompt) or "shell"; `line` its first line in the page."""
    page: str
    line: int
    kind: str
    text: str
    comment: str
    expect: Expect
    background: bool = False

    def where(self):
        return f"{self.page}:{self.line}"


@dataclasses.dataclass(frozen=True)
class ControllerLine:
    line: int
    program: str
    apps: tuple
    config: str = None   # the SDN_CONFIG file name, as written
    flags: tuple = ()


@dataclasses.dataclass(frozen=True)
class TopologyLine:
    line: int
    custom: str          # the --custom file, relative to the repository
    topo: str            # the --topo argument, as mn reads it
    controller: str      # the --controller argument


@dataclasses.dataclass
class Scenario:
    page: str
    section: str
    files: dict           # name -> text: the yaml blocks and here-documents it saves
    controller: ControllerLine = None
    topology: TopologyLine = None
    commands: list = dataclasses.field(default_factory=list)
    problems: list = dataclasses.field(default_factory=list)  # "page:line: what"

    @property
    def config_text(self):
        """The text of the controller's SDN_CONFIG file, None without one."""
        if self.controller is None or self.controller.config is None:
            return None
        return self.files.get(self.controller.config)


@dataclasses.dataclass(frozen=True)
class _Block:
    lang: str
    start: int          # line number of the block's first content line (1-based)
    lines: tuple
    before: str         # the prose paragraph just before the block
    heading: int        # index of the heading the block is under (-1: none)


def _blocks(text):
    """(headings, blocks): headings as (level, title, line); fenced blocks in order."""
    headings, blocks, prose, blank = [], [], [], False
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence:
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            blocks.append(_Block(fence.group(1), index + 2, tuple(lines[index + 1:end]),
                                 " ".join(prose), len(headings) - 1))
            prose, blank, index = [], False, end + 1
            continue
        heading = _HEADING.match(line)
        if heading:
            headings.append((len(heading.group(1)), line.lstrip("#").strip(), index + 1))
            prose = []
        elif line.strip():
            if blank:  # a new paragraph
                prose = []
            prose.append(line.strip())
        blank = not line.strip()
        index += 1
    return headings, blocks


def split_comment(text):
    """(command, comment) of a shell line: the comment starts at the first `#` outside
    quotes that begins the line or follows a blank."""
    quote = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].rstrip(), text[index + 1:].strip()
    return text.rstrip(), ""


def _open_quote(text):
    """Whether `text` ends inside a quoted string."""
    quote = None
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and quote is None:
            break
    return quote is not None


def _logical_lines(block):
    """(line number, text) per command of a block: backslash continuations and
    strings spanning lines joined (with a newline inside quotes)."""
    out, pending, start = [], None, None
    for offset, raw in enumerate(block.lines):
        number = block.start + offset
        if pending is None:
            pending, start = raw, number
        else:
            pending += "\n" + raw
        command, _ = split_comment(pending)
        if command.endswith("\\"):
            continue
        if _open_quote(pending):
            continue
        out.append((start, pending))
        pending = None
    if pending is not None:
        out.append((start, pending))
    return out


def expectation(kind, command, comment):
    """What `command` (with its `comment`) should answer, by the convention above."""
    words = comment.lower()
    status = _STATUS.match(words)
    if kind == "mininet" and command.strip() == "pingall":
        return Expect(exit=None, loss=0.0)
    if words.startswith("no reply"):
        return Expect(exit="nonzero")
    is_curl = kind == "shell" and command.lstrip().startswith("curl ")
    if is_curl:
        return Expect(exit=0, status=int(status.group(1)) if status else None,
                      keys=tuple(dict.fromkeys(_KEY.findall(_QUOTED_VALUE.sub("", comment)))))
    return Expect(exit=0)


def _shell_shape_ok(command):
    for part in command.split(";"):
        words = part.split()
        if not words or words[0] not in SHELL_PROGRAMS:
            return False
    return True


def _controller(number, command):
    match = _CONTROLLER.match(command)
    words = shlex.split(match.group("args"))
    return ControllerLine(number, match.group("program"),
                          tuple(w for w in words if not w.startswith("-")),
                          match.group("config"),
                          tuple(w for w in words if w.startswith("-")))


def _topology(number, command, problems, where):
    words = shlex.split(command.replace("\\\n", " "))
    options = {}
    rest = words[2:]
    while rest:
        word = rest.pop(0)
        if word.startswith("--") and "=" in word:
            key, value = word[2:].split("=", 1)
        elif word.startswith("--") and rest:
            key, value = word[2:], rest.pop(0)
        else:
            problems.append(f"{where}: mn argument {word!r} not understood")
            continue
        options[key] = value
    unknown = set(options) - {"custom", "topo", "controller"}
    if unknown:
        problems.append(f"{where}: mn options not supported here: {sorted(unknown)}")
    if not {"custom", "topo"} <= set(options):
        problems.append(f"{where}: mn needs --custom and --topo")
        return None
    return TopologyLine(number, options["custom"], options["topo"],
                        options.get("controller", ""))


def _saved_name(block):
    match = _SAVED_AS.search(block.before)
    if match:
        return match.group(1)
    first = block.lines[0].strip() if block.lines else ""
    if re.fullmatch(r"#\s*\S+\.ya?ml", first):
        return first.lstrip("#").strip()
    return None


def parse(text, page="page.md"):
    """The page's by-hand scenario (None when no section has an `mn --custom` line)."""
    headings, blocks = _blocks(text)
    mn_block = next((b for b in blocks if b.lang == "sh" and any(
        line.lstrip().startswith("sudo mn --custom") for line in b.lines)), None)
    if mn_block is None:
        return None
    if mn_block.heading >= 0:
        level = headings[mn_block.heading][0]
        first = mn_block.heading
        last = next((i for i in range(first + 1, len(headings)) if headings[i][0] <= level),
                    len(headings))
        in_section = [b for b in blocks if first <= b.heading < last]
        title = headings[first][1]
    else:
        in_section, title = [b for b in blocks if b.heading < 0], ""
    scenario = Scenario(page, title, {})
    for block in in_section:
        if block.lang == "yaml":
            name = _saved_name(block)
            if name:
                scenario.files[name] = "\n".join(block.lines) + "\n"
    # the section's sh blocks, then those of the sections after it (run against the
    # same network), from the last block before (or at) the network's that starts the
    # controller
    shells = [b for b in blocks if b.lang == "sh" and b.heading >= in_section[0].heading]
    start = max((i for i, b in enumerate(shells[:shells.index(mn_block) + 1])
                 if any(_CONTROLLER.match(split_comment(line)[0].strip())
                        for line in b.lines)), default=shells.index(mn_block))
    for block in shells[start:]:
        _read_block(block, scenario)
    if scenario.controller is None:
        scenario.problems.append(f"{page}: no controller command in section {title!r}")
    return scenario


def _read_block(block, scenario):
    lines = iter(_logical_lines(block))
    for number, text in lines:
        where = f"{scenario.page}:{number}"
        command, comment = split_comment(text)
        command = command.strip()
        if not command:
            continue
        heredoc = _HEREDOC.match(command)
        if heredoc:
            body = []
            for _, more in lines:
                if more.strip() == heredoc.group("end"):
                    break
                body.append(more)
            scenario.files[heredoc.group("path")] = "\n".join(body) + "\n"
            continue
        if _CONTROLLER.match(command):
            if scenario.controller is not None:
                scenario.problems.append(f"{where}: a second controller command")
            scenario.controller = _controller(number, command)
            if scenario.controller.config and scenario.config_text is None:
                scenario.problems.append(
                    f"{where}: SDN_CONFIG={scenario.controller.config} is no file the page "
                    "saves")
            continue
        if command.startswith("sudo mn "):
            scenario.topology = _topology(number, command, scenario.problems, where)
            continue
        if command.startswith("mininet>"):
            kind, command = "mininet", command[len("mininet>"):].strip()
        elif _shell_shape_ok(command):
            kind = "shell"
        else:
            scenario.problems.append(f"{where}: unknown command shape: {command!r}")
            continue
        background = command.endswith("&")
        expect = Expect(exit=None) if background else expectation(kind, command, comment)
        scenario.commands.append(Command(scenario.page, number, kind, command, comment,
                                         expect, background))


def page_scenario(page):
    """The scenario of `page` (a path relative to the repository), or None."""
    return parse((REPO / page).read_text(), page)


def scenarios():
    """Every page's scenario, pages without one left out."""
    return [s for s in map(page_scenario, PAGES) if s is not None]
