"""The TLS OpenFlow listener (controller/channel.py TlsStreamServer) closes a peer that
opens the port and never finishes its TLS handshake, after the OpenFlow handshake's
budget (openflow.handshake_timeout_s), and still serves the next peer; a peer in its
handshake holds one of its address's connection slots. Run the way ryu-manager runs
it: in a process with eventlet's monkey patching, on a real socket."""
import subprocess
import sys
import textwrap

PRELUDE = '''
import eventlet
eventlet.monkey_patch()
import logging, socket, ssl, sys, time
logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
from ryu.lib import hub
from controller import channel, ofguard
directory = sys.argv[1]
handled = []


def serve(handle):
    server = channel.TlsStreamServer(("127.0.0.1", 0), handle, certfile=directory + "/c.crt",
                                     keyfile=directory + "/c.key")
    hub.spawn(server.serve_forever)
    return server.server.getsockname()[1]


def closed_after(peer):
    start = time.monotonic()
    peer.settimeout(5)
    assert peer.recv(1) == b"", "the peer was not closed"
    return time.monotonic() - start


def connect_a_switch(port):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    good = context.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    deadline = time.monotonic() + 3
    while not handled and time.monotonic() < deadline:
        hub.sleep(0.02)
    return good
'''

TIMEOUT_SCRIPT = PRELUDE + textwrap.dedent('''
    ofguard.configure(ofguard.OpenFlowSettings(handshake_timeout_s=0.5))
    port = serve(lambda sock, addr: handled.append(addr))
    silent = socket.create_connection(("127.0.0.1", port))   # says nothing
    print("closed after %.2f s" % closed_after(silent))
    good = connect_a_switch(port)
    print("handled", len(handled))
''')

SLOTS_SCRIPT = PRELUDE + textwrap.dedent('''
    ofguard.configure(ofguard.OpenFlowSettings(handshake_timeout_s=2.0,
                                               max_connections_per_address=2))
    ofguard._original["factory"] = lambda sock, addr: handled.append(dict(ofguard._open))
    port = serve(ofguard.connection_factory)
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    hub.sleep(0.2)
    print("open while in handshake", dict(ofguard._open))
    third = socket.create_connection(("127.0.0.1", port))
    print("third closed after %.2f s" % closed_after(third))
    for peer in silent:
        closed_after(peer)
    hub.sleep(0.1)
    good = connect_a_switch(port)
    print("handled", handled, "open", dict(ofguard._open))
''')


def run(script, directory):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=controller", "-keyout", "c.key", "-out", "c.crt"],
                   cwd=directory, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", script, str(directory)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_peer_that_never_finishes_the_tls_handshake_is_closed(tmp_path):
    out = run(TIMEOUT_SCRIPT, tmp_path)
    closed = float(out.split("closed after ")[1].split()[0])
    assert 0.4 <= closed < 2.5, out
    assert "refused a TLS connection" in out and "handled 1" in out


def test_peers_in_their_tls_handshake_hold_connection_slots(tmp_path):
    """max_connections_per_address counts a peer from its accept, TLS handshake
    included: two silent peers fill a limit of 2, a third is closed at once, and once
    the silent ones are timed out a switch connects (counted once, not twice)."""
    out = run(SLOTS_SCRIPT, tmp_path)
    assert "open while in handshake {'127.0.0.1': 2}" in out, out
    assert float(out.split("third closed after ")[1].split()[0]) < 1.0, out
    assert "127.0.0.1: 2 open, limit 2" in out
    assert "handled [{'127.0.0.1': 1}] open {}" in out, out
