"""`cnnlab serve`: a web page to draw a digit and watch the network think, and a JSON prediction API.

- `inference.py`: bytes in, probabilities / preprocessed input / feature maps out (no web code);
- `app.py`: the FastAPI app (`create_app`), request limits, the listening socket (the `cnnlab serve`
  command that starts them: cnnlab.commands.serve);
- `launch.py`: start a real server subprocess on a free loopback port (tests, benchmarks);
- `static/`: the page (hand-written HTML, JS and CSS; no CDN, no build step).

Nothing here runs at import time: the app is built by `create_app(checkpoint)`.
"""
