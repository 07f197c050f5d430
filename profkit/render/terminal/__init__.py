"""What a person reads in a terminal: one module per command's result, tables that fit 80 columns."""

from __future__ import annotations
