"""`cnnlab serve CHECKPOINT`: the page and the prediction API (`serve.app.create_app`) under uvicorn, on a
socket bound first (a busy port is one clear error); prints the URL."""

import argparse
import sys

from cnnlab.errors import CnnlabError
from cnnlab.i18n import _
from cnnlab.serve.app import MAX_BODY_BYTES
from cnnlab.serve.deadline import REQUEST_SECONDS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help=_("run folder or .safetensors file"))
    p.add_argument(
        "--host", default="127.0.0.1", help=_("address to bind (default 127.0.0.1: this machine only)")
    )
    p.add_argument("--port", type=int, default=8000, help=_("TCP port (default 8000; 0 picks a free one)"))
    p.add_argument(
        "--max-upload-mb", type=float, default=MAX_BODY_BYTES / 2**20, help=_("request body cap (default 5)")
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help=_(
            "PyTorch threads per request (default 1: requests already run in parallel, and more threads "
            "per request oversubscribe the cores, which on a busy machine is many times slower)"
        ),
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=REQUEST_SECONDS,
        metavar="SECONDS",
        help=_(
            "a request's headers, then its body, must arrive within this (default {seconds:g}); "
            "a stalled client is disconnected (408 for a stalled upload)",
            seconds=REQUEST_SECONDS,
        ),
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help=_("server log level; info and debug also log every request (default info)"),
    )


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from cnnlab.serve.app import bind, create_app
    from cnnlab.serve.deadline import KEEP_ALIVE_SECONDS, header_deadline_protocol
    from cnnlab.serve.logs import translate_uvicorn_lines

    if not 0 <= args.port <= 65535:
        raise CnnlabError(_("--port must be 0..65535, got {value}", value=args.port))
    if args.max_upload_mb <= 0:
        raise CnnlabError(_("--max-upload-mb must be > 0, got {value}", value=args.max_upload_mb))
    if args.torch_threads < 1:
        raise CnnlabError(_("--torch-threads must be >= 1, got {value}", value=args.torch_threads))
    torch.set_num_threads(args.torch_threads)
    if not args.request_timeout > 0:
        raise CnnlabError(_("--request-timeout must be > 0 seconds, got {value}", value=args.request_timeout))
    app = create_app(
        args.checkpoint,
        max_body_bytes=int(args.max_upload_mb * 2**20),
        request_seconds=args.request_timeout,
    )
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    info = app.state.predictor.info
    print(
        _(
            "cnnlab serve: {model} ({dataset}) at http://{host}:{port}/  (Ctrl-C stops)",
            model=info["model"],
            dataset=info["dataset"],
            host=shown,
            port=port,
        ),
        flush=True,
    )
    if host not in ("127.0.0.1", "::1"):
        print(
            _(
                "cnnlab: warning: listening on {host}: anyone who can reach this port can use the API "
                "(no authentication, no TLS); see docs/serve.md",
                host=host,
            ),
            file=sys.stderr,
            flush=True,
        )
    level = args.log_level
    config = uvicorn.Config(
        app,
        log_level=level,
        access_log=level in ("info", "debug"),
        server_header=False,
        http=header_deadline_protocol(args.request_timeout),  # slow headers: closed (serve/deadline.py)
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    translate_uvicorn_lines()  # uvicorn's own lines ("Started server process ...") in the language chosen
    uvicorn.Server(config).run(sockets=[sock])
    return 0
