"""The test run's own server process: the app Prefect's `prefect_test_harness` serves (its
`create_app(ephemeral=True)`: no UI, only the services an ephemeral server runs), started the
way Spechestra starts its servers (`spechestra.server.launch.import_frozen`: Prefect's server
imported with the cyclic collector paused, then frozen). Run: `python -m kit.ephemeral_server PORT`;
`--tls CERT KEY`: it serves https with that certificate (a team's server behind TLS).

It ends with the test process that started it, however that ends: the harness's server outlived
a test run killed with `kill -9` (seen here), and every later run on the machine paid for it.
"""

import os
import signal
import sys
import threading
import time

from spechestra.server.launch import import_frozen


def _end_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own shutdown


def main(port: int, tls: list[str]) -> None:
    threading.Thread(target=_end_with_parent, args=(os.getppid(),), daemon=True).start()
    import_frozen("prefect.server.api.server", "uvicorn")
    import uvicorn
    from prefect.server.api.server import create_app
    certificate = dict(ssl_certfile=tls[0], ssl_keyfile=tls[1]) if tls else {}
    uvicorn.run(create_app(ephemeral=True, final=True), host="127.0.0.1", port=port, log_level="error", lifespan="on",
                **certificate)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[3:5] if sys.argv[2:3] == ["--tls"] else [])
