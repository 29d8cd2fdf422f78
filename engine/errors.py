"""The one exception hierarchy of Headrace.

Engine code raises these; `api.errors` maps each class to an HTTP status and an
OpenAI error type in one place. Nothing here knows about HTTP.
"""

from __future__ import annotations


class HeadraceError(Exception):
    """Base of every error Headrace reports to a caller.

    `message` is shown to the caller, so it must never contain a secret.
    `param` is the path of the offending input field, when there is one.
    `code` is a short machine-readable reason.
    """

    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code


class InvalidRequest(HeadraceError):
    """The input is malformed or breaks a rule; nothing was changed."""


class UnsupportedMediaType(InvalidRequest):
    default_code = "unsupported_media_type"


class PayloadTooLarge(InvalidRequest):
    default_code = "payload_too_large"


class MethodNotAllowed(InvalidRequest):
    default_code = "method_not_allowed"


class NotSupported(InvalidRequest):
    """A known feature or endpoint Headrace does not implement."""

    default_code = "not_supported"


class AuthenticationFailed(HeadraceError):
    default_code = "invalid_api_key"


class PermissionDenied(HeadraceError):
    default_code = "permission_denied"


class NotFound(HeadraceError):
    default_code = "not_found"


class Conflict(HeadraceError):
    """The request clashes with the current state (duplicate id, bad transition)."""

    default_code = "conflict"


class RateLimited(HeadraceError):
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class BudgetExceeded(HeadraceError):
    default_code = "budget_exceeded"


class UpstreamError(HeadraceError):
    """A provider answered with an error or an unreadable response."""

    default_code = "upstream_error"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None,
        **kwargs,
    ):
        super().__init__(message, **kwargs)
        self.status = status
        self.retry_after = retry_after


class UpstreamTimeout(UpstreamError):
    default_code = "upstream_timeout"


class ServiceUnavailable(HeadraceError):
    """Headrace cannot take the request now (overload, dependency down)."""

    default_code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ConfigurationError(HeadraceError):
    """Headrace is configured in a way that cannot work (raised at start-up)."""

    default_code = "configuration_error"
