"""Renderers: turn profile data into SVG, HTML and JSON files."""

from __future__ import annotations
