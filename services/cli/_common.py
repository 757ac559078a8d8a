"""What every `elm` command shares: the consoles and the one way to fail with a message."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Prints `error: message` on stderr; raise the returned Exit."""
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)  # paths stay whole
    return typer.Exit(code)
