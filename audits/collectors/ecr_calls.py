"""AWS call plumbing every ECR module shares: each call's outcome (value or a
one-line reason, never an exception), request counting for the bench, and
messages with access key ids masked.

An outcome keeps the AWS error code (`LifecyclePolicyNotFoundException`)
because "not found" is often the fact itself (no lifecycle policy), not a
failure to observe it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from audits.collectors.base import RequestCounter
from audits.collectors.ecr_facts import mask_key_id
from audits.untrusted import terminal_text

T = TypeVar("T")

_AKIA = re.compile(r"\b(A[KS]IA|ASIA)[A-Z0-9]{12}([A-Z0-9]{4})\b")
# What an answer botocore cannot use raises out of a call: its parser's own
# error (a plain Exception, not a BotoCoreError) for XML that is not XML, a
# UnicodeDecodeError (a ValueError) for JSON that is not UTF-8, and
# AttributeError/TypeError/KeyError when JSON or our reading of it meets the
# wrong shape. Each is that call's error, like a ClientError, not the end of
# the collection.
_UNUSABLE_ANSWER = (ResponseParserError, ValueError, TypeError, AttributeError, KeyError)
MAX_ERROR_CHARS = 300  # of an AWS or botocore message in a fact; bodies can be megabytes


def count_requests(client: Any, prefix: str, counter: RequestCounter) -> None:
    """Count each API call (`before-call`) and each retry it needed (`after-call`
    reads `RetryAttempts`) under `"<prefix>:<Operation>"`. Registered first so a
    Stubber's short-circuit cannot hide a call."""

    def before_call(model: Any, **_: Any) -> None:
        counter.add(f"{prefix}:{model.name}")

    def after_call(model: Any, parsed: Mapping[str, Any], **_: Any) -> None:
        retries = int(parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
        if retries:
            counter.add(f"{prefix}:{model.name} (retry)", retries)

    client.meta.events.register_first("before-call.*.*", before_call)
    client.meta.events.register_first("after-call.*.*", after_call)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The value of one API interaction, or why there is none. `error_code` is
    the AWS error code (`LifecyclePolicyNotFoundException`) when AWS answered."""

    value: T | None = None
    error: str | None = None
    error_code: str | None = None
    error_exc: BaseException | None = field(default=None, repr=False, compare=False)


def attempt(fn: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(value=fn())
    except ClientError as exc:
        return Outcome(error=describe(exc), error_code=error_code(exc), error_exc=exc)
    except BotoCoreError as exc:
        return Outcome(error=describe(exc), error_exc=exc)
    except _UNUSABLE_ANSWER as exc:
        return Outcome(error=f"unusable answer: {type(exc).__name__}: {describe(exc)}", error_exc=exc)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "") or "")


def describe(exc: BaseException) -> str:
    """A one-line reason with any access key id masked (AWS messages can name
    one), capped, control characters made visible: the message is the remote
    side's text, and botocore's parser error appends the whole raw body after
    its first line, which is all we keep of it."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        text = f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    else:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, ResponseParserError):
            text = text.split("\n", 1)[0]
    return terminal_text(_AKIA.sub(lambda m: mask_key_id(m.group(0)), text), limit=MAX_ERROR_CHARS)
