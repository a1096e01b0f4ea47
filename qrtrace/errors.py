"""One root exception for what users did wrong; the CLI prints its message as one line."""


class QrtraceError(Exception):
    """Root of qrtrace's own errors. The message is a sentence meant for the user."""


class InputError(QrtraceError):
    """The user's input (file, flag, record) cannot be used as given."""


class StoreError(QrtraceError):
    """The store refused or failed an operation; nothing already stored was changed by it."""
