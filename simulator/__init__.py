"""Recommender-system amplification audit simulator."""

__version__ = "0.1.0"
