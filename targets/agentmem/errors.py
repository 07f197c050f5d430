"""The engine's error hierarchy; the HTTP layer maps each class to one status code."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of everything the engine raises on purpose."""


class NotFound(EngineError):
    """The memory does not exist *for this tenant* (another tenant's memory looks the same)."""


class InvalidInput(EngineError):
    """A request the engine refuses: wrong dimension, NaN, empty content, unknown sort key..."""


class PoolTimeout(EngineError):
    """No database connection became free within the pool's timeout."""


class IncompatibleDatabase(EngineError):
    """The database was created with another embedding dimension or a newer schema."""
