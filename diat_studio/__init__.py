"""DIAT Studio: change one facial attribute in a photo while keeping the person recognisable."""

__version__ = "0.1.0"
