"""Facts as plain JSON-able data, for the evidence bundle and debugging.

Dataclasses become dicts, datetimes ISO strings, enums their values. Facts
never hold secrets (collectors record names, not values), so nothing is
redacted here; reporters still redact defensively.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from audits.model import TargetFacts


def to_data(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_data(v) for v in value]
    return value


def facts_to_data(target: TargetFacts) -> dict[str, Any]:
    data: dict[str, Any] = to_data(target)
    return data
