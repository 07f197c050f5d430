"""What each command does, as plain functions that return a result document or raise.

The CLI (:mod:`profkit.cli`) calls one of these per command; ``ci`` composes several; tests call
them in-process. Nothing here prints or exits: progress goes through a
:class:`profkit.progress.Reporter`, results are returned (:mod:`profkit.results`), failures are
raised (:mod:`profkit.errors`).
"""

from __future__ import annotations
