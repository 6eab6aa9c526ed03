"""One exception type for anything the user got wrong.

The CLIs catch it and print its message as a single line on stderr, then exit
with its status (2 = bad input), so no traceback ever reaches the user."""


class UserError(Exception):
    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status
