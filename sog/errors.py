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


def is_out_of_memory(exc: BaseException) -> bool:
    """True for running out of memory: `MemoryError`, or torch's `RuntimeError` for it (CPU ``DefaultCPUAllocator:
    can't allocate memory``, ``CUDA out of memory`` / `torch.cuda.OutOfMemoryError`)."""
    if isinstance(exc, MemoryError):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or type(exc).__name__ == "OutOfMemoryError"
