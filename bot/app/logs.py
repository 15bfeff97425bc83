"""Logging, configured once for the whole process (uvicorn's and the SDKs' loggers included).

    configure_logging(level="INFO", fmt="json")

`text` (the default) is one readable line per record; `json` is one JSON object per line for log stacks such as
Loki or Elasticsearch: time, level, logger, message, and — where the code that logged knew them — the incident
key, the platform and the request id (`log.info("…", extra={"incident": "INC-7", "platform": "slack"})`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

# Record attributes copied into a JSON line when present (passed with `extra=`).
CONTEXT_FIELDS = ("incident", "platform", "request_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(*, level: str = "INFO", fmt: Literal["text", "json"] = "text",
                      stream: TextIO | None = None) -> logging.Handler:
    """One handler on the root logger; every library logger (uvicorn, slack_bolt, discord, httpx, sqlalchemy)
    propagates to it. Returns the handler (a process that stops can remove it)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries speak at WARNING and above
    logging.getLogger("warroom").setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        library = logging.getLogger(name)
        library.handlers.clear()  # uvicorn installs its own when given a log_config; we give it none
        library.propagate = True
    logging.getLogger("uvicorn.access").setLevel(level)
    logging.getLogger("uvicorn.error").setLevel(level)
    return handler
