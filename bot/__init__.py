"""Advocacy fact bot: sourced answers about trade-union repression in Belarus."""

__version__ = "0.1.0"
