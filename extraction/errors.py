"""The extraction stage's one error type."""

from common.errors import UserError


class ExtractionError(UserError):
    """A fingerprint folder or extraction setting that cannot be used; the message names it."""
