"""genanki, imported without the asyncio that its cached-property dependency pulls in.

genanki takes its `cached_property` decorator from the cached-property backport, which
imports asyncio (and with it ssl, socket and logging) to support coroutines genanki never
decorates: about a fifth of neurodeck's start-up. The standard library's
functools.cached_property does the same job for plain methods, so genanki gets that one while
it is imported; the stand-in is removed again so no other library ever sees it.
"""

from __future__ import annotations

import functools
import sys
import types

_stand_in = types.ModuleType("cached_property")
_stand_in.cached_property = functools.cached_property  # type: ignore[attr-defined]
sys.modules.setdefault("cached_property", _stand_in)
try:
    from genanki import Card, Deck, Model, Note, Package, guid_for
finally:
    if sys.modules.get("cached_property") is _stand_in:
        del sys.modules["cached_property"]

__all__ = ["Card", "Deck", "Model", "Note", "Package", "guid_for"]
