"""Stable content hashes: the same value gives the same hash in every process and on every run.

Why one home: cell hashes, the suite hash and pre-training keys must agree byte for byte, so
they share one canonical JSON form (sorted keys, no spaces, ``str`` for what JSON lacks).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(obj: Any, n: int = 12) -> str:
    """The first ``n`` hex digits of the SHA-256 of ``obj``'s canonical JSON."""
    return hashlib.sha256(_canonical_json(obj).encode()).hexdigest()[:n]
