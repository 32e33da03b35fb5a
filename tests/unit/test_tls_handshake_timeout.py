"""The TLS OpenFlow listener (controller/channel.py TlsStreamServer) closes a peer that
opens the port and never finishes its TLS handshake, after the OpenFlow handshake's
budget (openflow.handshake_timeout_s), and still serves the next peer. Run the way
ryu-manager runs it: in a process with eventlet's monkey patching, on a real socket."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import eventlet
    eventlet.monkey_patch()
    import logging, socket, ssl, sys, time
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    from ryu.lib import hub
    from controller import channel, ofguard
    directory = sys.argv[1]
    ofguard.configure(ofguard.OpenFlowSettings(handshake_timeout_s=0.5))
    handled = []
    server = channel.TlsStreamServer(("127.0.0.1", 0), lambda sock, addr: handled.append(addr),
                                     certfile=directory + "/c.crt", keyfile=directory + "/c.key")
    hub.spawn(server.serve_forever)
    port = server.server.getsockname()[1]
    silent = socket.create_connection(("127.0.0.1", port))   # says nothing
    start = time.monotonic()
    silent.settimeout(5)
    assert silent.recv(1) == b"", "the silent peer was not closed"
    print("closed after %.2f s" % (time.monotonic() - start))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    good = context.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    deadline = time.monotonic() + 3
    while not handled and time.monotonic() < deadline:
        hub.sleep(0.02)
    print("handled", len(handled))
''')


def test_a_peer_that_never_finishes_the_tls_handshake_is_closed(tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=controller", "-keyout", "c.key", "-out", "c.crt"],
                   cwd=tmp_path, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    closed = float(done.stdout.split("closed after ")[1].split()[0])
    assert 0.4 <= closed < 2.5, done.stdout
    assert "refused a TLS connection" in done.stdout and "handled 1" in done.stdout
