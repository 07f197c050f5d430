from __future__ import annotations

from profkit.cli import main

main()
