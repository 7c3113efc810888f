"""Keep secrets out of logs, even at DEBUG.

botocore logs every response body at DEBUG (`botocore.parsers`, GetSecretValue's SecretString included) and
every request's parameters (`botocore.endpoint`, CreateSecret/PutSecretValue's and AssumeRole's included). A
filter on those two loggers drops exactly the records that carry a secret value; everything else stays debuggable.
"""

from __future__ import annotations

import logging

# An AssumeRole request's sts:ExternalId is kept out too: the stacks take it as a NoEcho parameter.
_SECRET_MARKERS = ("SecretString", "SecretBinary", "ExternalId")
_SECRET_MARKERS_BYTES = tuple(marker.encode() for marker in _SECRET_MARKERS)


class SecretResponseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        values = [record.msg, *(a if isinstance(a, bytes | str) else repr(a) for a in args)]
        return not any(
            any(marker in value for marker in _SECRET_MARKERS) if isinstance(value, str)
            else isinstance(value, bytes) and any(marker in value for marker in _SECRET_MARKERS_BYTES)
            for value in values
        )


_FILTER = SecretResponseFilter()


def install() -> None:
    """Idempotent: attach the filter to the loggers that emit request parameters and response bodies."""
    for name in ("botocore.parsers", "botocore.endpoint"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
