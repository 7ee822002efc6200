"""The package version, in one place (the log records it; a newer log names it)."""
__version__ = "0.1.0"
