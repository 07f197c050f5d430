"""One module per CLI command; each exposes a plain function that tests can call directly."""

from __future__ import annotations
