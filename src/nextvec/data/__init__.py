"""Windows over a store split: (context (B, T, D), mask (B, T), target (B, D), hard negatives, doc ids)."""

from nextvec.data.windows import context_indices, gather_windows, window_targets

__all__ = ["context_indices", "gather_windows", "window_targets"]
