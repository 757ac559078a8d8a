"""`elm dashboard`: the live dashboard of the runs in a store or on a coordinator, in a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elm_core.errors import ElmError
from services.cli._common import console, fail
from services.cli.remote import TokenOpt, credentials
from services.client import CoordinatorClient
from services.dashboard import CoordinatorSource, RunSource, StoreSource, create_app, serve

DEFAULT_PORT = 8080
HostOpt = Annotated[str, typer.Option(help="The address to listen on; 127.0.0.1 keeps it on this machine.")]
PortOpt = Annotated[int, typer.Option(min=0, max=65535, help="The port to listen on.")]


def dashboard_command(
    store: Annotated[
        Path | None, typer.Option(help="A run directory or run store file (what `elm run` writes).")
    ] = None,
    coordinator: Annotated[
        str | None,
        typer.Option(
            envvar="ELM_COORDINATOR", help="A coordinator's address: its runs, with pause/resume/stop."
        ),
    ] = None,
    token: TokenOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = DEFAULT_PORT,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(help="Another name the dashboard may be reached by (the Host header); repeatable."),
    ] = None,
) -> None:
    """Serve the live dashboard: runs, maps, curves, operators and elites, updated as batches land."""
    if (store is None) == (coordinator is None):
        raise fail("give one of --store PATH or --coordinator HOST:PORT")
    try:
        source: RunSource
        if store is not None:
            source, name = StoreSource(store), f"store {store}"
        else:
            assert coordinator is not None
            source = CoordinatorSource(CoordinatorClient(coordinator, credentials=credentials(token)))
            name = f"coordinator {coordinator}"
        app = create_app(source, source_name=name, allowed_hosts=allowed_host or ())
    except ElmError as e:
        raise fail(str(e)) from e
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    console.print(f"dashboard of {name}: http://{shown}:{port}/  (Ctrl-C stops it)")
    try:
        serve(app, host, port)
    finally:
        source.close()
