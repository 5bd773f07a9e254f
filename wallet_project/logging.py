"""Structured JSON logs (structlog): every line carries the request context variables.

One JSON object per line on stdout, whether the record comes from structlog
(`structlog.get_logger(...).info("request", status=200)`) or from the standard library
(Django, Celery, gunicorn): `timestamp` (UTC, ISO 8601), `level`, `logger`, `event`, the
bound context (`request_id`) and the record's own fields (`user_id`, `status`, ...).
"""

from typing import Any

import structlog
from structlog.typing import Processor

# Steps every record goes through, from either side, before rendering.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """A logging.Formatter that renders stdlib and structlog records as one JSON object."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(default=str),
            ],
            foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
            **kwargs,
        )


structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        *_SHARED,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
