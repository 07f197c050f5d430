"""Rich consoles: results on stdout, progress and messages on stderr (so --json stays clean)."""

from __future__ import annotations

from rich.console import Console

out = Console()
err = Console(stderr=True)
