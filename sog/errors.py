"""The one exception type sog raises for problems a user can fix."""


class SogError(Exception):
    """A human-readable problem with the input, the options or the output path.

    The CLI prints ``str(err)`` as a single line and exits with code 2.
    """
