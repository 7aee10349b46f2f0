"""The regguard policy pack: what `pulumi preview --policy-pack policy` runs.

The only place `PolicyPack` is constructed: constructing it starts the
analyzer's gRPC server, prints its port for the CLI and blocks, so it must
never happen on import (tests import `policy.policies` instead).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI runs this file from inside policy/; make the repository importable
# even when the project is not installed in the interpreter's environment.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pulumi_policy import PolicyPack  # noqa: E402

from policy.policies import build_policies  # noqa: E402


def main() -> None:
    PolicyPack(
        "regguard",
        policies=build_policies(),
        description="regguard rule catalog on declared AWS ECR resources",
    )


if __name__ == "__main__":
    main()
