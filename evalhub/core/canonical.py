"""Canonical JSON: one byte sequence per value, so equal content hashes equally.

Keys sorted, no insignificant whitespace, UTF-8, and numbers normalised: an integral float is
written as an integer (1.0 -> 1, -0.0 -> 0), so `weight: 1` and `weight: 1.0` are the same
spec. NaN and infinities are refused: they have no canonical form.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any


def normalise(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no canonical JSON form")
        return int(value) if value.is_integer() else value
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


def canonical_json(value: Any) -> str:
    return json.dumps(
        normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
