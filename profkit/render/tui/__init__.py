"""``profkit console`` in a terminal: a live (or replayed) view of an asyncio program's tasks, in Textual."""

from __future__ import annotations
