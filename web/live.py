"""Socket.IO handlers. Server-to-client events come from the RunManager's listener."""

from flask_socketio import emit

from cnn.runs import UnknownRun


def register(socketio, app):
    manager = app.extensions["runs"]

    @socketio.on("connect")
    def on_connect(auth=None):
        # oldest first, so a page rebuilding itself replays runs in the order they began
        emit("history", {"runs": [r.summary() for r in reversed(manager.newest_first())]})

    @socketio.on("stop_run")
    def on_stop_run(data=None):
        run_id = data.get("run_id") if isinstance(data, dict) else None
        try:
            manager.stop(run_id)
        except UnknownRun as exc:
            emit("request_failed", {"event": "stop_run", "error": exc.args[0]})
