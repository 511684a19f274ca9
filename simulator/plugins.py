"""Loading a platform team's own classes (rankers, mitigation stages) by dotted path."""

from __future__ import annotations

import importlib


def load_class(name: str, builtin: dict[str, type], method: str, signature: str) -> type:
    """``builtin[name]``, or the class ``package.module.Class`` imported; it must define a callable ``method``
    (``signature`` is how the error message spells it)."""
    if name in builtin:
        return builtin[name]
    module_name, _, class_name = name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import module {module_name!r}: {exc}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ImportError(f"module {module_name!r} has no {class_name!r}")
    if not callable(getattr(cls, method, None)):
        raise TypeError(f"{name} has no {method}{signature} method")
    return cls
