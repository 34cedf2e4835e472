"""Machine-independent seeds.

Python's `hash()` of a string is salted per process, so seeds are derived with SHA-256 instead: the
same parts give the same seed on every machine and in every process, which is what makes the world's
data and the annotators' labels byte-identical everywhere.
"""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any parts (joined by their `str`), stable across machines and processes."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")
