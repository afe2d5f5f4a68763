"""Socket.IO handlers. Server-to-client events come from the RunManager's listener."""

from flask_socketio import emit

from cnn import events
from cnn.runs import UnknownRun


def history(manager):
    """The newest group's runs with their metrics (slot order), and every other run without: a page shows
    one pair, and what it sends on connect must not grow with every run ever made."""
    runs = manager.newest_first()
    group = runs[0].group if runs else None
    shown = sorted((r for r in runs if r.group == group), key=lambda r: r.slot)
    return {"runs": [r.summary() for r in shown], "older": [r.summary(metrics=False) for r in runs if r.group != group]}


def register(socketio, app):
    manager = app.extensions["runs"]

    @socketio.on("connect")
    def on_connect(auth=None):
        emit(events.HISTORY, history(manager))

    @socketio.on(events.STOP_RUN)
    def on_stop_run(data=None):
        run_id = data.get("run_id") if isinstance(data, dict) else None
        try:
            manager.stop(run_id)
        except UnknownRun as exc:
            emit(events.REQUEST_FAILED, {"event": events.STOP_RUN, "error": exc.args[0]})
