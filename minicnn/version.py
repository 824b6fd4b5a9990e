"""minicnn's version, in a module of its own: anything may import it without importing minicnn."""
__version__ = "0.1.0"
