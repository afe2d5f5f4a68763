"""The web face of the engine: create_app() wires REST routes and Socket.IO to a RunManager."""

import os
from pathlib import Path
from urllib.parse import urlparse

from flask import Flask, jsonify, request
from flask_socketio import SocketIO
from werkzeug.exceptions import HTTPException

from cnn.config import ConfigError
from cnn.data import DataError
from cnn.infer import NoWeights, Predictor
from cnn.runs import Busy, RunManager, UnknownRun

from . import api, assets, insight, live

ROOT = Path(__file__).resolve().parent.parent
LOCAL_NAMES = {"127.0.0.1", "localhost", "[::1]"}


def create_app(test_config=None):
    app = Flask(__name__, root_path=str(ROOT), static_folder="static", template_folder="templates")
    app.config.from_mapping(
        DATA_DIR=os.environ.get("CNN_DATA_DIR", "data"),
        RUNS_DIR="runs",
        CACHE_DIR=None,  # decoded datasets; None: <RUNS_DIR>/cache
        AUTOTUNE=True,  # time each network's forms at its first run (cnn/forms.py)
        DATA_PARALLEL="auto",  # a lone run on a CPU: one process per core where faster; server.py's --data-parallel
        WARM_WORKERS=0,  # worker processes kept ready for the next runs; server.py sets it from --warm-workers
        DEVICE="auto",
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,  # room for a 5 MB image file as base64
        LOCAL_ONLY=True,  # server.py sets it from --host
    )
    if test_config:
        app.config.update(test_config)
    app.json.sort_keys = False  # answers keep the order fields are declared in (the form's order)
    socketio = SocketIO(app, cors_allowed_origins=same_local_origin if app.config["LOCAL_ONLY"] else None)
    app.extensions["runs"] = RunManager(
        app.config["DATA_DIR"],
        app.config["RUNS_DIR"],
        app.config["DEVICE"],
        listener=lambda name, payload: socketio.emit(name, payload),
        cache_dir=app.config["CACHE_DIR"],
        autotune=app.config["AUTOTUNE"],
        warm=app.config["WARM_WORKERS"],
        data_parallel=app.config["DATA_PARALLEL"],
    )
    app.extensions["runs"].resume_analyses()
    app.extensions["predictor"] = Predictor()

    @app.before_request
    def only_local_names():
        # A server bound to loopback answers only to loopback names, so a web page elsewhere cannot
        # reach it by pointing a DNS name of its own at 127.0.0.1 (DNS rebinding).
        if app.config["LOCAL_ONLY"] and not is_local(request.host):
            return jsonify(error=f"Host: {request.host} is not this machine; open http://127.0.0.1 instead."), 403

    app.register_blueprint(api.bp)
    app.register_blueprint(insight.bp)
    app.register_blueprint(assets.bp)
    live.register(socketio, app)

    @app.errorhandler(ConfigError)
    def bad_input(exc):
        return jsonify(error=str(exc), field=exc.field, errors=exc.errors), 400

    # each of these carries a sentence for the user as its first argument
    for kind, status in ((UnknownRun, 404), (NoWeights, 409), (insight.NotReady, 409), (Busy, 409), (DataError, 503)):
        app.register_error_handler(kind, lambda exc, status=status: (jsonify(error=exc.args[0]), status))

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if not request.path.startswith("/api/"):
            return exc
        return jsonify(error=_sentence(exc)), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc):  # never a stack trace to the client; the log keeps it
        app.logger.exception("unexpected error")
        return jsonify(error="The server hit an unexpected error; the run data is safe. See the server log."), 500

    return app


def is_local(host):
    """host: a Host header such as 127.0.0.1:5000."""
    return host.rsplit(":", 1)[0] in LOCAL_NAMES


def same_local_origin(origin, environ):
    """Socket.IO's origin check: the page's own origin, and only under a loopback name."""
    host = environ.get("HTTP_HOST", "")
    return is_local(host) and urlparse(origin).netloc == host


def _sentence(exc):
    if exc.code == 404:
        return f"No such address: {request.path}. The API lives under /api/runs and /api/predict."
    if exc.code == 405:
        return f"{request.method} is not allowed on {request.path}."
    if exc.code == 413:
        return "body: too large; a request body may be at most 8 MiB (an image file at most 5 MB)."
    return exc.description
