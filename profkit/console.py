"""Rich consoles: results on stdout, progress and messages on stderr (so --json stays clean)."""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
