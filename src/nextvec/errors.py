"""Errors a user can act on. The CLI prints their message without a traceback."""

import warnings


class NextvecError(Exception):
    """Base class: a problem with the user's input, files or configuration."""


class FingerprintMismatch(NextvecError):
    """Vectors, a checkpoint or an index came from a different encoder (or sentence splitter) than expected."""


class SplitterVersionWarning(UserWarning):
    """Two stores' chunks were split by different versions of the same sentence splitter."""


def check_fingerprint(expected: dict, actual: dict, what: str) -> None:
    """Refuse to mix vectors from two encoders: compare name, dim, pooling and normalisation; then the
    sentence splitter, where both sides record one (see `check_splitter`).

    Imported vectors declare name, dim and normalisation only (pooling None): pooling is then not compared."""
    keys = ("name", "dim", "pooling", "normalized")
    undeclared = {"pooling"} if expected.get("pooling") is None or actual.get("pooling") is None else set()
    diff = {k: (expected.get(k), actual.get(k)) for k in keys
            if k not in undeclared and expected.get(k) != actual.get(k)}
    if diff:
        lines = ", ".join(f"{k}: {a!r} here vs {b!r} in {what}" for k, (a, b) in diff.items())
        raise FingerprintMismatch(
            f"encoder mismatch with {what} ({lines}); vectors from different encoders cannot be mixed"
        )
    check_splitter(expected.get("splitter"), actual.get("splitter"), what)


def check_splitter(expected: dict | None, actual: dict | None, what: str) -> None:
    """Chunks split by another splitter are refused; another version of the same splitter is flagged
    with a SplitterVersionWarning. A side that records no splitter (an encoder, a store or checkpoint
    made before splitters were recorded) is not compared."""
    if not expected or not actual:
        return
    if expected.get("name") != actual.get("name"):
        raise FingerprintMismatch(
            f"splitter mismatch with {what}: chunks here were split by {expected.get('name')!r}, there by "
            f"{actual.get('name')!r}; re-ingest one of them with `--splitter {actual.get('name')}` (or "
            f"`--splitter {expected.get('name')}`) so both hold the same kind of chunks"
        )
    if expected.get("version") != actual.get("version"):
        warnings.warn(f"{what} was split by {actual.get('version')!r}, this by {expected.get('version')!r}: "
                      f"the same splitter, another version; a few chunk boundaries may differ",
                      SplitterVersionWarning, stacklevel=3)
