"""The root `visualdm` command and `visualdm serve`."""

from __future__ import annotations

import typer
import uvicorn

from visualdm.cli import archive, db, demo, info, maintain, spatial, users

app = typer.Typer(
    help="Visual DM persistence and service layer.", no_args_is_help=True, add_completion=False
)
app.add_typer(db.app, name="db")
app.add_typer(info.ownership_app, name="ownership")
app.add_typer(info.audit_app, name="audit")
app.add_typer(demo.app, name="demo")
app.add_typer(users.app, name="users")
app.add_typer(spatial.app, name="spatial")
app.add_typer(archive.archive_app, name="archive")
app.command("maintain")(maintain.maintain)

HTTP_PROTOCOL = "visualdm.api.server:HeadLimitedHttpToolsProtocol"
"""The server's HTTP/1.1 protocol (uvicorn's httptools one, bounded; api/server.py)."""


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Serve the HTTP and WebSocket API (settings from VDM_* variables)."""
    uvicorn.run(
        "visualdm.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
        # httptools, with the registry's bounds on request heads; named, not imported, so
        # other commands do not load the HTTP stack.
        http=HTTP_PROTOCOL,
    )


def main() -> None:
    """Entry point of the console script."""
    app()
