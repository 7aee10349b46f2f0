"""moto's server with AssumeRole refused the way AWS refuses it.

moto lets anyone assume any role ARN, even one that does not exist (its STS backend
says so). AWS answers `AccessDenied` (HTTP 403) with `User: <caller ARN> is not
authorized to perform: sts:AssumeRole on resource: <role ARN>` unless the role exists
and its trust policy lets the caller in. A multi-account audit must report "no audit
role in account X" as an error instead of auditing it, so its tests need that refusal:

    python -m sandbox.moto_strict -H 127.0.0.1 -p PORT     # same options as moto.server

The check wraps moto's AssumeRole request handler, not `STSBackend.assume_role`: the
backend call does not carry the caller, and AssumeRoleWithWebIdentity reuses it with
another kind of trust (a `Federated` principal). A call is allowed when the role exists
in the target account's IAM backend and its trust policy has an `Allow` statement whose
Action covers `sts:AssumeRole` and whose `Principal.AWS` names the caller's account
(`arn:aws:iam::<account>:root` or the bare id), the caller's ARN, or `*`. The one
condition evaluated is `StringEquals` on `sts:ExternalId` (the ExternalId sent must be
one of the values); a statement with any other condition grants nothing. Deny
statements, NotPrincipal and the caller's own identity policies are not evaluated.
"""

from __future__ import annotations

import fnmatch
import json
import re
import warnings
from collections.abc import Mapping
from typing import Any

from moto import server as moto_server
from moto.core.responses import ActionResult
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.sts.exceptions import STSClientError
from moto.sts.responses import TokenResponse

ASSUME_ROLE = "sts:AssumeRole"
_ROLE_ARN = re.compile(r"^arn:[\w-]+:iam::(\d{12}):role/.+$")
_FORBIDDEN = 403  # AWS's status for AccessDenied; moto would serialize a code outside the STS model as 400


class AssumeRoleAccessDenied(STSClientError):
    """AWS's AccessDenied for an AssumeRole the role's trust does not allow."""

    code = "AccessDenied"

    def __init__(self, caller_arn: str, role_arn: str) -> None:
        super().__init__(f"User: {caller_arn} is not authorized to perform: {ASSUME_ROLE} on resource: {role_arn}")


def trust_allows(
    trust_policy: str | Mapping[str, Any],
    caller_account: str,
    caller_arn: str,
    external_id: str | None,
    partition: str = "aws",
) -> bool:
    """Whether a role's trust policy lets the caller assume it (see the module docstring)."""
    document = json.loads(trust_policy) if isinstance(trust_policy, str) else trust_policy
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    callers = {"*", caller_account, f"arn:{partition}:iam::{caller_account}:root", caller_arn}
    return any(
        st.get("Effect") == "Allow"
        and _covers_assume_role(st.get("Action"))
        and _names_caller(st.get("Principal"), callers)
        and _conditions_hold(st.get("Condition"), external_id)
        for st in statements
    )


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value or [])


def _covers_assume_role(action: Any) -> bool:
    return any(fnmatch.fnmatchcase(ASSUME_ROLE.lower(), str(pattern).lower()) for pattern in _as_list(action))


def _names_caller(principal: Any, callers: set[str]) -> bool:
    if principal == "*":
        return True
    named = principal.get("AWS") if isinstance(principal, Mapping) else None
    return any(name in callers for name in _as_list(named))


def _conditions_hold(condition: Any, external_id: str | None) -> bool:
    for operator, keys in (condition or {}).items():
        for key, expected in keys.items():
            if operator != "StringEquals" or key.lower() != "sts:externalid":
                return False  # not evaluated here, so it grants nothing
            if external_id not in _as_list(expected):
                return False
    return True


def _role_trust_policy(role_arn: str, partition: str) -> str | None:
    """The role's trust policy from its account's IAM backend; None when there is no such role."""
    match = _ROLE_ARN.match(role_arn or "")
    if match is None:
        return None
    try:
        role = iam_backends[match.group(1)][partition].get_role_by_arn(role_arn)
    except NotFoundException:
        return None
    return str(role.assume_role_policy_document)


_moto_assume_role = TokenResponse.assume_role


def _checked_assume_role(self: TokenResponse) -> Any:
    """moto's AssumeRole, answered with AWS's 403 AccessDenied when the trust does not allow the caller."""
    role_arn = str(self._get_param("RoleArn") or "")
    _user_id, caller_arn, caller_account = self.backend.get_caller_identity(self.get_access_key(), self.region)
    trust = _role_trust_policy(role_arn, self.partition)
    if trust is None or not trust_allows(
        trust, caller_account, caller_arn, self._get_param("ExternalId"), self.partition
    ):
        _status, headers, body = self.serialized(ActionResult(AssumeRoleAccessDenied(caller_arn, role_arn)))
        return body, {**headers, "status": _FORBIDDEN}
    return _moto_assume_role(self)


def install() -> None:
    """Check every AssumeRole this process's moto answers from now on."""
    TokenResponse.assume_role = _checked_assume_role  # type: ignore[method-assign]
    # AccessDenied is one of AWS's common errors, so the STS model moto serializes from has no shape for it.
    warnings.filterwarnings("ignore", message=r"Exception\(AssumeRoleAccessDenied\)", category=UserWarning)


def main(argv: list[str] | None = None) -> None:
    install()
    moto_server.main(argv)


if __name__ == "__main__":
    main()
