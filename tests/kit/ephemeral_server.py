"""The test run's own server process: the app Prefect's `prefect_test_harness` serves (its
`create_app(ephemeral=True)`: no UI, only the services an ephemeral server runs), started the
way Spechestra starts its servers (`spechestra.server.launch.import_frozen`: Prefect's server
imported with the cyclic collector paused, then frozen). Run: `python -m kit.ephemeral_server PORT`.
"""

import sys

from spechestra.server.launch import import_frozen


def main(port: int) -> None:
    import_frozen("prefect.server.api.server", "uvicorn")
    import uvicorn
    from prefect.server.api.server import create_app
    uvicorn.run(create_app(ephemeral=True, final=True), host="127.0.0.1", port=port, log_level="error", lifespan="on")


if __name__ == "__main__":
    main(int(sys.argv[1]))
