"""nextvec: language modelling in a sentence-embedding space."""

__version__ = "0.1.0"
