"""The concept store: the one place that knows the on-disk format of vectors, texts and splits."""

from nextvec.store.reader import SPLITS, ConceptStore, open_store
from nextvec.store.writer import StoreWriter

__all__ = ["SPLITS", "ConceptStore", "StoreWriter", "open_store"]
