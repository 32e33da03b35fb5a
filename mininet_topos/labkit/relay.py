"""A TCP relay a lab can cut: a process's way to a server (one etcd member) through a
local port of ours, so that one process alone can be cut off from it while the others
keep their way. Cut, the relay closes what it carries and refuses new connections at
once (a refused connection, not a silent one: the client's error comes fast)."""
import contextlib
import socket
import threading


class Relay:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.is_cut = False
        self._carried, self._lock = set(), threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return   # closed
            if self.is_cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:   # a cut() since the accept: this one goes too
                if self.is_cut:
                    cut_meanwhile = True
                else:
                    cut_meanwhile = False
                    self._carried |= {client, upstream}
            if cut_meanwhile:
                self._drop(client, upstream)
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *sockets):
        with self._lock:
            for sock in sockets:
                self._carried.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self):
        """No way through any more: what was carried is closed, new peers refused."""
        with self._lock:
            self.is_cut = True
            carried = list(self._carried)
        self._drop(*carried)

    def restore(self):
        self.is_cut = False

    def close(self):
        self.cut()
        with contextlib.suppress(OSError):
            self.listener.close()
