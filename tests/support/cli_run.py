"""The `sdn` CLI run in-process against any object with its client's `call(method,
path, body)`: a stub of canned replies, or an app's WSGI application."""
import io

from sdn import main as cli


def run_cli(monkeypatch, api, *argv):
    """(exit status, stdout, stderr) of `sdn ARGV` talking to `api`."""
    monkeypatch.setattr(cli, "Client", lambda url, token=None: api)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()
