"""The database's one error type."""

from common.errors import UserError


class DatabaseError(UserError):
    """A database that cannot be built, read or used as asked; the message names the file or song."""
