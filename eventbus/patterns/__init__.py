"""The pattern engine: EventBridge-style content patterns, compiled once and indexed.

:class:`Pattern` compiles a pattern and matches events or JSON-like
documents; :class:`PatternIndex` routes a document to the patterns it
matches without trying each one; :class:`PatternLimits` bounds how large a
pattern may be. The engine depends only on the primitives (its errors),
never on the bus.
"""

from ._index import PatternIndex as PatternIndex
from ._limits import DEFAULT_LIMITS as DEFAULT_LIMITS
from ._limits import PatternLimits as PatternLimits
from ._pattern import Pattern as Pattern
from ._values import MAX_ARRAY_DEPTH as MAX_ARRAY_DEPTH

__all__ = ("DEFAULT_LIMITS", "MAX_ARRAY_DEPTH", "Pattern", "PatternIndex", "PatternLimits")
