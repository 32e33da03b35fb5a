# Two commands on a fresh Debian 12 machine (as root): `make demo` or `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := openvswitch-switch mininet iperf3 ethtool tcpdump iproute2 iputils-ping \
                net-tools procps psmisc python3-venv python3-pip traceroute iptables \
                etcd-server etcd-client chromium chromium-driver
# chromium + chromium-driver: the web console's browser tests (selenium drives them).
# etcd: the cluster state store (state.backend: etcd, docs/cluster-store.md). Not started
# here (no systemd): whatever needs it starts `etcd` with a data dir of its own.
# Building Ryu 4.34 needs an old setuptools (docs/design/platform.md, "Why these pins").
BUILD_PINS := "setuptools<58" wheel==0.45.1 pbr==7.1.3
DEMO_ARGS ?=
# where make bench and make reliability write their records (bench/record.py); the labs
# write theirs under reports/results/ too
RESULTS ?= reports/results

.PHONY: setup apt ovs venv test unit integration lint docs docs-serve demo bench clean lab-qos lab-vlan lab-lb lab-overlay lab-bond lab-tcpip lab-ha reliability
.PHONY: results results-publish

setup: apt ovs venv

apt:
	@if [ "$$(id -u)" != 0 ]; then echo "make setup installs packages: run it as root" >&2; exit 1; fi
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	fi

ovs:
	@ovs-vsctl --timeout=3 show >/dev/null 2>&1 || /usr/share/openvswitch/scripts/ovs-ctl start
	@# OVSDB for the controller, on localhost only (controller/ovsdb.py)
	@ovs-vsctl get-manager | grep -qx 'ptcp:6640:127.0.0.1' || ovs-vsctl -- --id=@m create Manager \
	    target='"ptcp:6640:127.0.0.1"' -- add Open_vSwitch . manager_options @m >/dev/null

venv: $(STAMP)

$(STAMP): setup.cfg setup.py
	test -x $(PY) || /usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(BUILD_PINS)
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[test,lab,docs]"
	# Mininet's Python package comes from Debian (with mnexec); link it into the venv.
	ln -sfn /usr/lib/python3/dist-packages/mininet "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mininet"
	# Ryu needs its compatibility fix before ryu-manager imports anything, and eventlet's start-up
	# noise (its deprecation banner, unpatched locks) goes there too: see controller/ryu_compat.py.
	printf '%s\nimport controller.ryu_compat as _c; _c.install()\n' "$(CURDIR)" \
	    > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/sdn_ryu_compat.pth"
	$(VENV)/bin/ryu-manager --version
	$(VENV)/bin/sdn-controller --version
	touch $@

lint: venv
	$(VENV)/bin/lint-imports --config setup.cfg

unit: venv
	$(PY) -m pytest -q -m "not integration"

integration: setup
	$(PY) -m pytest -q -m integration

# The documentation site (mkdocs.yml) into site/: the reference pages generated from the
# code, then a strict build, so a broken link or an orphaned page fails (a few seconds).
docs: venv
	$(PY) -m docs.tools.generate
	$(VENV)/bin/mkdocs build --strict --quiet -d site/

# docs/results.md from the published records in docs/results/*.json (make docs does it too).
results: venv
	$(PY) -m docs.tools.results

# The newest record of each run under $(RESULTS) into docs/results/, then docs/results.md.
results-publish: venv
	$(PY) -m docs.tools.results publish --from $(RESULTS)

# The site on http://127.0.0.1:8000, rebuilt on each edit (regenerate: make docs).
docs-serve: docs
	$(VENV)/bin/mkdocs serve --strict -a 127.0.0.1:8000

# The whole suite: import contracts, the docs build, unit tests, integration tests on real OVS
# (those marked long run in make reliability instead).
test: setup lint docs
	$(PY) -m pytest -q --durations=40 -m "not long"

# A tour of every lab (learning switch, VLAN, QoS, LB, overlay, bond, TCP/IP, security,
# cluster), about 6 minutes.
demo: setup
	$(PY) -m mininet_topos.tour $(DEMO_ARGS)

# The HTB lab measured, then its loss checks: table and plot under reports/ (about 110 s).
lab-qos: setup
	$(PY) -m mininet_topos.qos_lab

# The VLAN lab checked frame by frame: table and drawing under reports/ (about 15 s).
lab-vlan: setup
	$(PY) -m mininet_topos.vlan_lab

# The load balancer: spread, weights, a backend out and back; bar chart (about 10 s).
lab-lb: setup
	$(PY) -m mininet_topos.lb_lab

# Three hypervisors, two tenants, VXLAN: isolation, VNIs, learn(), iperf3 (about 15 s).
lab-overlay: setup
	$(PY) -m mininet_topos.overlay_lab

# Two bridges, two links bonded through OVSDB: active-backup, failover, balance-slb + LACP.
lab-bond: setup
	$(PY) -m mininet_topos.bond_lab

# The TCP/IP Illustrated network: routes, proxy ARP, NAT, traceroute (about 15 s).
lab-tcpip: setup
	$(PY) -m mininet_topos.tcpip_lab

# Two tenants, one router, security groups: SNAT, a floating IP, a cut (about 35 s).
lab-security: setup
	$(PY) -m mininet_topos.security_lab

# Three etcd members, three controller nodes: kill, pause, cut off; who is master when.
lab-ha: setup
	$(PY) -m mininet_topos.ha_lab

bench reliability: export SDN_RESULTS_DIR := $(RESULTS)

# Restarts, floods, failures on real OVS: a table of scenario, expectation, result.
# Then the whole app combination matrix (every pair, both topologies and learning modes).
reliability: setup
	$(PY) -m bench.reliability; r=$$?; $(PY) -m bench.combinations || r=1; exit $$r

bench: setup
	$(PY) -m bench.l2_throughput
	$(PY) -m bench.vlan_throughput
	$(PY) -m bench.overlay
	$(PY) -m bench.lb
	$(PY) -m bench.topology
	$(PY) -m bench.controller_load
	$(PY) -m bench.flow_install
	$(PY) -m bench.ovs_packet_ins
	$(PY) -m bench.failover
	$(PY) -m bench.cluster_load
	$(PY) -m bench.security

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info
