"""The one error type a script reports as a single line and exit status 2."""


class UserError(ValueError):
    """Bad input from the user (config, file, audio, checkpoint); the message names what and where."""
