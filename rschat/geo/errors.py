"""Errors about the user's input, worded for the user.

An ``InputError`` carries a message meant to be shown as-is in the chat or printed by
the CLI (which then exits non-zero). Anything else that escapes a tool is a bug.
"""


class InputError(ValueError):
    """Bad input from the user: a corrupt file, a mismatched pair, an image too large."""


class TooLargeError(InputError):
    """An image over a memory limit (pixels or decoded bytes), refused from its header
    before decoding; a caller that can read by windows may catch it and do so instead."""
