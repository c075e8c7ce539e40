"""Moved: the CLI's readers and views live under ``_cli/``, the file-name rules in ``_storage``.

Kept for the modules that still import ``is_model_list`` from here (``_ledger``).
"""

from __future__ import annotations

from ._storage import is_model_list

__all__ = ["is_model_list"]
