"""neurodeck: compile YAML fact sets into reproducible, update-safe Anki decks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neurodeck")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
