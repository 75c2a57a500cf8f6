"""The workers' error tree; CRM clients raise these, workers/jobs.py turns them into retries or dead letters.

* CrmError                     anything a CRM call can fail with
  - CrmTransientError          retryable: timeouts, connection errors, 5xx, unexpected bodies
    - CrmRateLimitedError      429 or an OAuth throttle; `retry_after_s` is the least wait
      - CrmNotSentError        the shared limiter (workers/crm/limits.py) kept the call from being sent
  - CrmAuthError               final: credentials or scopes rejected (fix the configuration, then replay)
  - CrmNotFoundError           final: the record does not exist (any more)
  - CrmRejectedError           final: the CRM refused the request (NOT_ALLOWED, INVALID_DATA, ...)
  The notify action's endpoint (workers/notify/delivery.py) fails like a CRM call:
    - NotifyUnavailableError   retryable (a CrmTransientError): 5xx, 429 (its Retry-After), 408, timeout, connection
    - NotifyRejectedError      final (a CrmRejectedError): a redirect (never followed) or any other 4xx
* ActionNotApplicableError     final: a rule's action cannot apply to this record or change
  - NotifySecretError          final: a notify action's secret_env is not set, or not a whsec_ secret
* QueueUnavailableError        Redis did not accept jobs (workers/queue.py); the receiver answers 503

`loggable` names an error in a log line without the words a CRM (or anything else outside crmflow) put in it.
"""

from __future__ import annotations

from typing import Any


class CrmError(Exception):
    """A CRM call failed."""

    code = "CRM_ERROR"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None, quoted: bool = False) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        # The message holds outside words (a CRM's answer, an unexpected exception's text), which may repeat a
        # record's values: it is kept in dead letters, which hold personal data anyway, and never logged.
        self.quoted = quoted

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class CrmTransientError(CrmError):
    """A failure that may pass: retry with backoff."""

    code = "TRANSIENT"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        retry_after_s: float | None = None,
        quoted: bool = False,
    ) -> None:
        super().__init__(message, code=code, details=details, quoted=quoted)
        self.retry_after_s = retry_after_s


class CrmRateLimitedError(CrmTransientError):
    """The CRM asked us to slow down (HTTP 429, or the OAuth server's refresh throttle)."""

    code = "TOO_MANY_REQUESTS"


class CrmNotSentError(CrmRateLimitedError):
    """The account's shared limiter was full or paused for longer than a call may wait: nothing was sent."""


class CrmAuthError(CrmError):
    """The CRM rejected our credentials or their scopes."""

    code = "AUTH"


class CrmNotFoundError(CrmError):
    """The requested record does not exist."""

    code = "NOT_FOUND"


class CrmRejectedError(CrmError):
    """The CRM refused the request for a reason retrying will not change."""

    code = "REJECTED"


class NotifyUnavailableError(CrmTransientError):
    """A notify endpoint failed in a way that may pass (5xx, 429, 408, no answer in time, no connection)."""

    code = "NOTIFY_UNAVAILABLE"


class NotifyRejectedError(CrmRejectedError):
    """A notify endpoint refused the delivery (4xx) or redirected it (3xx, never followed): retrying will not help."""

    code = "NOTIFY_REJECTED"


class ActionNotApplicableError(Exception):
    """A rule's action cannot be carried out for this record or change."""

    code = "NOT_APPLICABLE"


class NotifySecretError(ActionNotApplicableError):
    """A notify action's secret_env names no variable, or one that holds no Standard Webhooks (whsec_) secret."""

    code = "NOTIFY_SECRET"


class QueueUnavailableError(Exception):
    """Redis could not take the jobs: nothing is lost, the caller (a sender, an operator) should try again."""


def loggable(exc: BaseException) -> str:
    """How a log line may name `exc`: its code, or its type, and its message only where crmflow wrote it. Pure.

    A CRM error quoting the CRM (`quoted`) shows its code alone, as does any exception crmflow does not know
    (its text may quote the data it failed on); Redis and OS errors keep their message, which is about the
    connection. The whole message stays in the dead letter.
    """
    if isinstance(exc, CrmError):
        return f"{exc.code} ({type(exc).__name__}; the CRM's message is not logged)" if exc.quoted else str(exc)
    if isinstance(exc, ActionNotApplicableError):
        return f"{exc.code}: {exc}"
    if isinstance(exc, OSError) or type(exc).__module__.startswith("redis."):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} (message not logged)"
