"""The CLI's exit codes and the errors that map to them: one place, so every command means the same thing.

0  all good
1  some finding failed or some input was rejected (normalize, pull, plan, apply, run); the rest went on
2  usage, configuration or environment error: nothing was done; the one line on stderr says what to fix
"""

from __future__ import annotations

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2

EXIT_CODES_HELP = """exit codes:
  0  all good
  1  some finding failed or some input was rejected (the rest went on)
  2  usage, configuration or environment error (nothing was done)"""


class UsageError(Exception):
    """Usage, configuration or environment error: one line naming the thing and how to fix it; exit 2."""


class InputRejected(Exception):
    """A whole input that cannot be used (not a findings array, a results file, ...); exit 2 when it is the only
    input, since nothing was done."""
