"""The one exception type sog raises for problems a user can fix."""


class SogError(Exception):
    """A human-readable problem with the input, the options or the output path.

    The CLI prints ``str(err)`` as a single line and exits with code 2.
    """


class Interrupted(KeyboardInterrupt):
    """Raised by the CLI's signal handler on SIGTERM/SIGINT/SIGHUP, so that every ``finally``/``except
    BaseException`` clean-up runs (temporary outputs are removed) before the process exits."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
