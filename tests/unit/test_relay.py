"""The lab kit's cuttable TCP relay (mininet_topos/labkit/relay.py): bytes pass both
ways; cut, what it carried is closed and a new client is refused at once; restored,
it carries again."""
import socket
import threading

from mininet_topos.labkit.relay import Relay


def echo_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: [c.sendall(d) for d in iter(
                lambda: c.recv(4096), b"")], daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return server


def talk(port, data=b"hello"):
    """What comes back (b"": the relay closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        try:
            sock.sendall(data)
            return sock.recv(4096)
        except ConnectionResetError:
            return b""


def test_the_relay_carries_is_cut_and_restored():
    server = echo_server()
    relay = Relay("127.0.0.1", server.getsockname()[1])
    try:
        assert talk(relay.port) == b"hello"
        held = socket.create_connection(("127.0.0.1", relay.port), timeout=2)
        held.sendall(b"x")
        assert held.recv(10) == b"x"
        relay.cut()
        assert held.recv(10) == b""                    # what it carried: closed
        assert talk(relay.port) == b""                 # a new client: closed at once
        relay.restore()
        assert talk(relay.port, b"again") == b"again"
    finally:
        relay.close()
        server.close()
