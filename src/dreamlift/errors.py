"""The one exception type that means "the user asked for something we cannot do"."""


class UsageError(Exception):
    """Bad input from the user: the CLI prints its message on one line and exits with code 2.

    Raise it for problems the user can fix (an empty prompt, an unknown config key, a missing model
    folder, an unwritable output path); let programming errors surface as ordinary exceptions.
    """
