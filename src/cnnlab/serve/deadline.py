"""Time limits on receiving a request, so that stalled clients cannot keep connections open.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive` seconds, but sets no limit on
how long a client may take to *send* a request: a connection that sends half its headers, or declares
a 5 MB upload and sends 10 bytes of it, stays open for good (a "slowloris"; 200 such uploads held 200
connections for as long as the test ran). Two limits of `--request-timeout` seconds each close that:

- `header_deadline_protocol(seconds)`: uvicorn's own h11 protocol with one timer, started when a
  connection opens (and again when a response is complete, for the next request) and stopped when a
  request's headers are in; if it fires, the connection is closed (there is no request to answer yet).
- `BodyDeadline` (used by the app's Guard middleware): once the headers are in, the whole body must
  arrive within the same time; otherwise the answer is 408 and the connection is closed.

Neither limit touches the time the server takes to answer (a large overview can take seconds).
"""

import asyncio

from cnnlab.serve.inference import RequestError

REQUEST_SECONDS = 30.0  # headers, then the body, must each arrive within this (a phone photo: ~1 s)
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this (uvicorn's default, said here)


def header_deadline_protocol(seconds: float) -> type:
    """uvicorn's h11 protocol, plus: a request's headers must be complete `seconds` after the connection
    opened or the previous response ended, or the connection is closed. For uvicorn.Config(http=...)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol  # lazy: uvicorn only when serving

    class HeaderDeadline(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            self._arm()  # before super(): it may start a pipelined request, whose headers stop the timer
            super().on_response_complete()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a new request's headers were parsed: the app has it now
                self._disarm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


class BodyDeadline:
    """An ASGI `receive` whose request body must be complete `seconds` after it was made (408 if not);
    after the body, messages (a disconnect) pass through without a limit."""

    def __init__(self, receive, seconds: float):
        self.receive, self.seconds = receive, seconds
        self.end = asyncio.get_running_loop().time() + seconds
        self.done = False

    async def __call__(self):
        if self.done:
            return await self.receive()
        left = self.end - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self.receive(), timeout=max(left, 0.0))
        except asyncio.TimeoutError:
            raise RequestError(
                408, f"request body not received within {self.seconds:g} s (--request-timeout)"
            ) from None
        if message.get("type") != "http.request" or not message.get("more_body", False):
            self.done = True
        return message
