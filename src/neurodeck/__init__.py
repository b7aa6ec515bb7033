"""neurodeck: compile YAML fact sets into reproducible, update-safe Anki decks."""

# The single source of the version (pyproject reads it); importlib.metadata would cost
# tens of milliseconds at every start.
__version__ = "0.2.0"
