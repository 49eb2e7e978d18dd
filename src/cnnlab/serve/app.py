"""The FastAPI app (`create_app`) and the socket it listens on (`bind`); the `cnnlab serve` command that
starts them is cnnlab.commands.serve.

Routes: `GET /` (the page), `/static/*`, `GET /healthz`, `GET /api/model`, `POST /api/predict`,
`POST /api/detail` (one unit's numbers), `GET /i18n/{lang}.json` (the page's strings).
Every error, ours or the framework's, is JSON `{"error": "..."}` with a 4xx/5xx status, so a client
never has to parse an HTML error page, and a bad request never stops the server.
"""

import base64
import binascii
import json
import logging
import socket
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError

try:
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as e:  # the CLI turns this into one line instead of a traceback
    from cnnlab.i18n import _

    raise CnnlabError(_("cnnlab serve needs {module}: pip install 'cnnlab[serve]'", module=e.name)) from None

from cnnlab.i18n import LANGS, _, page_catalogue
from cnnlab.serve.deadline import REQUEST_SECONDS, BodyDeadline
from cnnlab.serve.explore import Explorer, explore_extras
from cnnlab.serve.inference import MAX_PIXELS, Predictor, RequestError

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 5 * 1024 * 1024  # a canvas PNG is ~10 kB and a phone photo ~4 MB
TRUE = {"1", "true", "yes", "on"}
log = logging.getLogger("cnnlab.serve")

# The page loads nothing from elsewhere, so the browser may refuse anything that is not from this server.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def error_response(status: int, message: str, close: bool = False) -> JSONResponse:
    headers = {"connection": "close"} if close else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Guard:
    """ASGI middleware: caps the request body and adds the security headers to every response.

    A declared Content-Length over the cap is refused before a byte of the body is read (and the
    connection closed, so the unread rest is not taken for the next request). A chunked body has no
    length up front, so its bytes are counted as the app reads them and reading stops at the cap. The
    body must arrive within `request_seconds` of the headers (408 and closed otherwise).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, request_seconds: float = REQUEST_SECONDS):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_seconds = request_seconds  # the body must arrive within this (serve/deadline.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length")
        too_big = f"request body too large: the limit is {self.max_body_bytes:,} bytes"
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            status, msg = (413, too_big) if declared.isdigit() else (400, "invalid Content-Length")
            await error_response(status, msg, close=True)(scope, receive, send_with_headers)
            return
        received = 0
        timed_receive = BodyDeadline(receive, self.request_seconds)  # 408 for a stalled upload

        async def counted_receive() -> Message:
            nonlocal received
            message = await timed_receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise RequestError(413, too_big)
            return message

        await self.app(scope, counted_receive, send_with_headers)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, (str, int)) and str(value).strip().lower() in TRUE)


def decode_base64_image(text: str) -> bytes:
    """Base64 or a `data:image/...;base64,` URL -> bytes."""
    if text.startswith("data:"):
        header, _comma, text = text.partition(",")
        if not header.endswith(";base64"):
            raise RequestError(400, "a data URL image must be base64-encoded (data:image/png;base64,...)")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, '"image" is not valid base64') from None


async def read_upload(request: Request) -> tuple[bytes, bool]:
    """(image bytes, features wanted) from a multipart, JSON or raw image/* body."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=8)
        try:
            files = [v for v in form.values() if isinstance(v, UploadFile)]
            if not files:
                raise RequestError(400, "multipart upload without a file: send the image as field 'file'")
            return await files[0].read(), _truthy(form.get("features"))
        finally:
            await form.close()
    if media == "application/json":
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested thousands deep
            raise RequestError(400, "request body is not valid JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("image"), str):
            raise RequestError(400, 'JSON body must be {"image": "<base64 PNG/JPEG or data URL>"}')
        return decode_base64_image(payload["image"]), _truthy(payload.get("features"))
    if media.startswith("image/") or media == "application/octet-stream":
        return await request.body(), False
    raise RequestError(
        415,
        f"unsupported content type {media or '(none)'!r}: send multipart/form-data with a file field, "
        'application/json {"image": "<base64>"}, or the image bytes as image/png or image/jpeg',
    )


def add_error_handlers(app: FastAPI) -> None:
    async def request_error(_: Request, e: RequestError) -> JSONResponse:
        return error_response(e.status, e.message, close=e.status in (408, 413))

    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        message = (
            f"{e.detail}: {request.method} {request.url.path}" if e.status_code in (404, 405) else e.detail
        )
        return JSONResponse({"error": str(message)}, status_code=e.status_code, headers=e.headers)

    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, f"invalid {where}: {first.get('msg', 'bad value')}")

    async def unexpected(_: Request, e: Exception) -> JSONResponse:
        log.exception(_("unexpected error"))  # the traceback goes to the server log, not to the client
        return error_response(500, f"internal error ({type(e).__name__}); see the server log")

    app.add_exception_handler(RequestError, request_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


def create_app(
    checkpoint_path: str | Path,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_pixels: int = MAX_PIXELS,
    request_seconds: float = REQUEST_SECONDS,
) -> FastAPI:
    """The app for one checkpoint (loaded now, so a bad path fails before the server starts)."""
    predictor = Predictor.from_checkpoint(checkpoint_path, max_pixels)
    # /docs and /redoc load Swagger UI from a CDN: off, the page must work offline. /openapi.json stays.
    app = FastAPI(title="cnnlab serve", docs_url=None, redoc_url=None)
    app.state.predictor = predictor
    add_error_handlers(app)
    app.add_middleware(Guard, max_body_bytes=max_body_bytes, request_seconds=request_seconds)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    info = {**predictor.info, "max_body_bytes": max_body_bytes, "max_pixels": max_pixels}

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "model": info["model"]}

    @app.get("/api/model")
    def model() -> dict:
        return info

    explorer = Explorer(predictor)

    @app.post("/api/predict")
    async def predict(
        request: Request,
        features: bool = False,
        overview: bool = False,
        gradcam: bool = False,
        gradcam_class: list[int] = Query(default=[]),
        layer: str | None = None,
    ) -> JSONResponse:
        """Body: multipart (any file field), JSON {"image": base64 or data URL}, or raw image/* bytes.
        `?features=1` (or a `features` field) adds every conv layer's feature maps as PNG sprites,
        `?overview=1` every layer's maps (serve/explore.py), `?gradcam=1` Grad-CAM heat maps for the top
        class or each `gradcam_class` (at `layer`, default: the family's last conv stage)."""
        data, wanted = await read_upload(request)
        extras = explore_extras(explorer, overview, gradcam, gradcam_class, layer)
        # inference is CPU-bound: a worker thread keeps the event loop free for other requests
        return JSONResponse(await run_in_threadpool(predictor, data, features or wanted, extras))

    @app.post("/api/detail")
    async def detail(request: Request, column: int, unit: int = 0) -> JSONResponse:
        """The real numbers behind unit `unit` of overview column `column`, for the same image body."""
        data, _wanted = await read_upload(request)

        def answer() -> dict:
            return explorer.detail(predictor.prepare(data), column, unit)

        return JSONResponse(await run_in_threadpool(answer))

    @app.get("/i18n/{lang}.json", include_in_schema=False)
    def catalogue(lang: str) -> dict:
        if lang not in LANGS:
            raise RequestError(404, f"no strings for language {lang!r}; known: {', '.join(LANGS)}")
        return page_catalogue(lang)

    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket; binding here (not in uvicorn) makes a busy port one clear error."""
    try:
        family, kind, proto, _name, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        raise CnnlabError(
            _("cannot listen on {host}:{port}: {why}", host=host, port=port, why=e.strerror or e)
        ) from None
    return sock
