"""Errors a user can act on. The CLI prints their message without a traceback."""


class NextvecError(Exception):
    """Base class: a problem with the user's input, files or configuration."""


class FingerprintMismatch(NextvecError):
    """Vectors, a checkpoint or an index came from a different encoder than expected."""


def check_fingerprint(expected: dict, actual: dict, what: str) -> None:
    """Refuse to mix vectors from two encoders: compare name, dim, pooling and normalisation.

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
