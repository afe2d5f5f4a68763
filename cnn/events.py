"""Every Socket.IO event, declared once: its name, payload fields and meaning, and the run statuses they move.

The trainer, the run manager, the CLI and the server emit these names; GET /api/schema serves them so
the page keys its handlers by the same names and applies the same status transitions.
"""

# server to client
HISTORY = "history"
RUNS_CREATED = "runs_created"
RUN_STARTED = "run_started"
BATCH = "batch"
GRADIENTS = "gradients"
EPOCH = "epoch"
RUN_FINISHED = "run_finished"
RUN_STOPPED = "run_stopped"
RUN_FAILED = "run_failed"
ANALYSIS_READY = "analysis_ready"
ANALYSIS_FAILED = "analysis_failed"
REQUEST_FAILED = "request_failed"
# client to server
STOP_RUN = "stop_run"

# name -> (payload fields, what it means); server-to-client events other than history and runs_created carry run_id
TO_CLIENT = {
    HISTORY: (("runs", "older"), "sent first on connect: the newest group's runs with metrics, the rest without"),
    RUNS_CREATED: (("group", "runs"), "a group of runs was accepted; slot 0 is A"),
    RUN_STARTED: (
        ("run_id", "device", "precision", "fast_form", "params", "train_samples", "validation_samples", "test_samples")
        + ("dataset", "classes", "shape", "steps_per_epoch", "epochs", "threads"),
        "the worker has its data loaded and is about to train",
    ),
    BATCH: (
        ("run_id", "epoch", "step", "steps", "samples_seen", "loss", "acc", "samples_per_s", "train_seconds", "lr"),
        "training progress, at most ~20 a second, always including an epoch's last batch",
    ),
    GRADIENTS: (("run_id", "samples_seen", "layers", "mean_abs", "max_abs"), "weight-gradient sizes per layer"),
    EPOCH: (
        ("run_id", "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc")
        + ("best_epoch", "lr", "seconds", "eval_seconds", "samples_seen", "peak_memory_bytes"),
        "an epoch ended and was tested on the full test set (and validated: val_* are null without a share)",
    ),
    RUN_FINISHED: (
        ("run_id", "epochs", "best_epoch", "early_stopped", "test_acc", "samples_seen", "train_seconds")
        + ("peak_memory_bytes",),
        "training ended; epochs is how many ran, best_epoch the validation's pick (null without a share)",
    ),
    RUN_STOPPED: (("run_id",), "the worker has ended after a stop"),
    RUN_FAILED: (("run_id", "error"), "the run failed; error is a sentence"),
    ANALYSIS_READY: (("run_id",), "the run's analysis is stored"),
    ANALYSIS_FAILED: (("run_id",), "the run's analysis could not be made"),
    REQUEST_FAILED: (("event", "error"), "a client event was refused; error names the field"),
}
TO_SERVER = {STOP_RUN: (("run_id",), "stop one run")}

# run statuses and the events that move them
QUEUED, RUNNING, FINISHED, STOPPED, FAILED = "queued", "running", "finished", "stopped", "failed"
ACTIVE = (QUEUED, RUNNING)
ENDED = (FINISHED, STOPPED, FAILED)
STATUS_AFTER = {RUN_STARTED: RUNNING, RUN_FINISHED: FINISHED, RUN_STOPPED: STOPPED, RUN_FAILED: FAILED}
TRANSITIONS = {QUEUED: (RUNNING, STOPPED, FAILED), RUNNING: (FINISHED, STOPPED, FAILED)}  # an ended run stays


def advance(status, event):
    """The status a run has after `event`: the same one when the event moves nothing or may not move it."""
    target = STATUS_AFTER.get(event)
    return target if target in TRANSITIONS.get(status, ()) else status


def describe():
    """The contract as JSON, for GET /api/schema."""
    return {
        "to_client": {name: {"fields": list(f), "doc": doc} for name, (f, doc) in TO_CLIENT.items()},
        "to_server": {name: {"fields": list(f), "doc": doc} for name, (f, doc) in TO_SERVER.items()},
        "statuses": {"active": list(ACTIVE), "ended": list(ENDED)},
        "status_after": STATUS_AFTER,
        "transitions": {k: list(v) for k, v in TRANSITIONS.items()},
    }
