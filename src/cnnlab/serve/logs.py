"""uvicorn's own terminal lines (`INFO:     Started server process [123]`) in cnnlab's language: a logging
filter on uvicorn's logger swaps the messages it knows for their translation, still %-style (logging formats
them after the filter). Other messages, and the access log's request lines, pass as they are."""

import logging

from cnnlab.i18n import N_, _

# uvicorn's lifecycle messages (uvicorn/server.py, uvicorn/lifespan/on.py), exactly as it logs them
UVICORN = frozenset(
    {
        N_("Started server process [%d]"),
        N_("Finished server process [%d]"),
        N_("Waiting for application startup."),
        N_("Application startup complete."),
        N_("Application startup failed. Exiting."),
        N_("Shutting down"),
        N_("Waiting for application shutdown."),
        N_("Application shutdown complete."),
        N_("Application shutdown failed. Exiting."),
        N_("Waiting for connections to close. (CTRL+C to force quit)"),
        N_("Waiting for background tasks to complete. (CTRL+C to force quit)"),
    }
)


class Translated(logging.Filter):
    """Translates a known uvicorn message; drops its coloured copy, which the terminal would show instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg in UVICORN and _(record.msg) != record.msg:
            record.msg = _(record.msg)
            record.__dict__.pop("color_message", None)
        return True


def translate_uvicorn_lines() -> None:
    """Call after uvicorn.Config has set up its logging (which replaces the loggers' handlers, not filters)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, Translated) for f in logger.filters):
        logger.addFilter(Translated())
