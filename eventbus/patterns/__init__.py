"""The pattern engine: EventBridge-style content patterns, compiled once and indexed.

:class:`Pattern` compiles a pattern and matches events or JSON-like
documents; :class:`PatternIndex` routes a document to the patterns it
matches without trying each one. The engine depends only on the
primitives (its errors), never on the bus.
"""

from ._index import PatternIndex as PatternIndex
from ._pattern import Pattern as Pattern

__all__ = ("Pattern", "PatternIndex")
