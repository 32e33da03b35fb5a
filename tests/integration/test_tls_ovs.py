"""The OpenFlow channel over TLS with mutual verification, on real Open vSwitch: the
switches connect with certificates from the test's own CA; a client without a
certificate, or with one from another CA, is refused; a client with a good
certificate that claims an existing switch's datapath id cannot take it over."""
import socket
import ssl
import struct
import subprocess
import time

import pytest

from controller.channel import REFUSED_MARK
from mininet_topos import harness
from mininet_topos.topos import Single

pytestmark = pytest.mark.integration
OFP13, HELLO, FEATURES_REQUEST, FEATURES_REPLY = 4, 0, 5, 6


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.crt",
            cwd=directory)


def make_cert(directory, name, ca):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", cwd=directory)


@pytest.fixture
def pki(tmp_path):
    make_ca(tmp_path, "ca")
    make_ca(tmp_path, "other-ca")
    for name, ca in (("controller", "ca"), ("switch", "ca"), ("intruder", "ca"),
                     ("stranger", "other-ca")):
        make_cert(tmp_path, name, ca)
    subprocess.run(["ovs-vsctl", "set-ssl", str(tmp_path / "switch.key"),
                    str(tmp_path / "switch.crt"), str(tmp_path / "ca.crt")], check=True)
    yield tmp_path
    subprocess.run(["ovs-vsctl", "del-ssl"], check=False)


def tls_client(port, pki, cert=None):
    """A TLS connection to the controller's OpenFlow port, with `cert` (a name in the
    pki directory) or without a client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(str(pki / "ca.crt"))
    if cert:
        context.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=3)
    return context.wrap_socket(raw)


def receives_hello(port, pki, cert=None) -> bool:
    """True when the controller talks OpenFlow to this client."""
    try:
        with tls_client(port, pki, cert) as conn:
            header = conn.recv(8)
            return len(header) == 8 and header[0] == OFP13 and header[1] == HELLO
    except (ssl.SSLError, OSError):
        return False


def recv_message(conn):
    header = b""
    while len(header) < 8:
        chunk = conn.recv(8 - len(header))
        if not chunk:
            return None
        header += chunk
    version, kind, length, xid = struct.unpack("!BBHI", header)
    body = b""
    while len(body) < length - 8:
        chunk = conn.recv(length - 8 - len(body))
        if not chunk:
            return None
        body += chunk
    return kind, xid


def test_tls_with_mutual_verification_and_no_datapath_takeover(lab, pki):
    tls = {name: str(pki / f"controller.{ext}") for name, ext in (("privkey", "key"),
                                                                   ("cert", "crt"))}
    tls["ca"] = str(pki / "ca.crt")
    controller, network = lab(Single(2), {"l2_switch": {"mode": "reactive"}}, tls=tls)
    s1, h1, h2 = network.switches[0], network["h1"], network["h2"]
    target = subprocess.run(["ovs-vsctl", "get-controller", "s1"], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert target.startswith("ssl:127.0.0.1:"), target
    assert harness.ping(h1, h2)                   # the switch is controlled over TLS
    # OVSDB is reachable from this host only
    managers = subprocess.run(["ovs-vsctl", "get-manager"], capture_output=True, text=True,
                              check=True).stdout.split()
    assert all(m.startswith("punix:") or m.endswith(":127.0.0.1") for m in managers), managers

    port = controller.of_port
    assert not receives_hello(port, pki)                    # no client certificate
    assert not receives_hello(port, pki, "stranger")        # certificate of another CA
    assert receives_hello(port, pki, "intruder")            # a good one: OpenFlow starts

    # the intruder, with a good certificate, claims s1's datapath id
    with tls_client(port, pki, "intruder") as conn:
        assert recv_message(conn)[0] == HELLO
        conn.sendall(struct.pack("!BBHI", OFP13, HELLO, 8, 1))
        closed = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                message = recv_message(conn)
            except TimeoutError:
                break  # still open, saying nothing
            if message is None:
                closed = True
                break
            if message[0] == FEATURES_REQUEST:
                conn.sendall(struct.pack("!BBHIQIBBxxII", OFP13, FEATURES_REPLY, 32,
                                         message[1], int(s1.dpid, 16), 0, 254, 0, 0, 0))
        assert closed, "the controller kept a second connection for s1's datapath id"
    assert REFUSED_MARK in controller.log_text()
    # s1 is still the controller's: new hosts are learned and forwarded on its connection
    h1.cmd("ip neigh flush all"), h2.cmd("ip neigh flush all")
    h2.setMAC("02:00:00:00:00:22")
    assert harness.ping(h1, h2)
    switches = controller.rest("GET", "/v1/switches")[1]
    assert [s["dpid"] for s in switches] == [s1.dpid]
    refusals = controller.log_text().count("refused a TLS connection")
    print(f"observed: switch on {target}; {refusals} handshakes refused (no certificate, "
          f"other CA); a second connection for datapath {s1.dpid} closed; pings through s1")
