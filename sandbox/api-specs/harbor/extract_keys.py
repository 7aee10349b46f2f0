"""Key/type extract of Harbor's installer template (see README.md):
`python extract_keys.py harbor.yml.tmpl > harbor.yml.keys.json`.

Commented-out sections (`# external_database:` ...) are uncommented first so
their keys are kept; prose comments do not look like `key:` lines and stay comments.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

_COMMENTED_KEY = re.compile(r"^(\s*)# ?(\s*)([a-z_][a-z0-9_]*:(\s.*)?|- [A-Za-z_].*)$")


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, list):
        return "list"
    return "string"  # unset values in the template (proxy settings) are strings too


def main(template: Path) -> None:
    lines = []
    for line in template.read_text(encoding="utf-8").splitlines():
        m = _COMMENTED_KEY.match(line)
        lines.append(m.group(1) + m.group(2) + m.group(3) if m else line)
    print(json.dumps(shape(yaml.safe_load("\n".join(lines))), indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
