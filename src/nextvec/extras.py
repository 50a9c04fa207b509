"""Optional extras: import a module an extra provides, or say which extra to install.

The core (ingest, train, evaluate) needs none of them; see [project.optional-dependencies] in
pyproject.toml for what each extra holds.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from nextvec.errors import NextvecError


def require(module: str, extra: str, what: str | None = None) -> ModuleType:
    """`importlib.import_module(module)`, or a NextvecError naming the extra that provides it.

    Args:
        module: dotted module name, e.g. "matplotlib.pyplot".
        extra: the nextvec extra that installs it, e.g. "report".
        what: the feature that needs it, for the message (default: the module's top-level package).
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        who = what or module.split(".")[0]
        raise NextvecError(f"{who} needs the [{extra}] extra: pip install 'nextvec[{extra}]'") from e
