"""What every `elm` command shares: the consoles and the one way to fail with a message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Prints `error: message` on stderr; raise the returned Exit."""
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)  # paths stay whole
    return typer.Exit(code)


def operator_table(operators: Iterable[Any]) -> Table:
    """Which operator earns its calls: per operator (an OperatorStats or an elm.v1.OperatorProgress), its
    mutations and the share that applied, ran, entered the archive or repeated an earlier program."""
    table = Table(title="per operator", show_header=True)
    for column in ("operator", "calls", "applied", "ran", "inserted", "duplicate", "tokens/call"):
        table.add_column(column, justify="right", no_wrap=True)
    for s in operators:
        n = max(s.mutations, 1)
        shares = (f"{count / n:.0%}" for count in (s.applied, s.ran, s.inserted, s.duplicates))
        table.add_row(s.operator, str(s.mutations), *shares, f"{s.generated_tokens / n:.0f}")
    return table
