"""The one exception type a user sees: bad input, named by field, with the fix."""


class ConfigError(ValueError):
    """Invalid user input. The message names the field and how to fix it.

    The CLI prints it as a single line, without a traceback.
    """
