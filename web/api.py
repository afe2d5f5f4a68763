"""REST routes under /api. Every bad input answers 4xx with {"error": sentence}."""

import re

from flask import Blueprint, current_app, jsonify, render_template, request

from cnn import data, datasets, events
from cnn.config import DATASETS, ConfigError, defaults_for, schema, validate
from cnn.infer import parse_image, parse_images
from cnn.models import mac_count, param_count

bp = Blueprint("api", __name__)
MAX_PREDICT_RUNS = 8
MAX_SAMPLES = 64


def runs():
    return current_app.extensions["runs"]


def body():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ConfigError("body", "must be a JSON object sent with Content-Type: application/json")
    return data


def model_configs(data):
    models = data.get("models")
    if not isinstance(models, list) or not 1 <= len(models) <= 2:
        raise ConfigError("models", "must be a list of one or two model configs")
    configs = []
    for i, raw in enumerate(models):
        try:
            configs.append(validate(raw, defaults_for(i)))
        except ConfigError as exc:
            errors = {f"models[{i}].{name}": rule for name, rule in exc.errors.items()}
            raise ConfigError(f"models[{i}].{exc.field}", exc.errors[exc.field], errors) from None
    return configs


@bp.get("/")
def index():
    return render_template("index.html")


@bp.get("/analysis")
def analysis_page():
    return render_template("analysis.html")


@bp.get("/favicon.ico")
def favicon():
    return current_app.send_static_file("favicon.svg")


@bp.post("/api/runs")
def start_runs():
    data = body()
    unknown = sorted(set(data) - {"mode", "models"})
    if unknown:
        raise ConfigError(unknown[0], "is not understood; send mode and models")
    configs = model_configs(data)
    started = runs().start(configs, data.get("mode", "parallel"))
    return jsonify(runs=[{"id": r.id, "config": r.config.to_dict()} for r in started]), 202


@bp.get("/api/runs")
def list_runs():
    return jsonify(runs=[r.summary(metrics=False) for r in runs().newest_first()])


@bp.get("/api/runs/<run_id>")
def get_run(run_id):
    return jsonify(runs().get(run_id).summary())


@bp.post("/api/runs/<run_id>/stop")
def stop_run(run_id):
    return jsonify(runs().stop(run_id).summary(metrics=False))


@bp.get("/api/schema")
def get_schema():
    """The model config's fields, defaults and presets, and the Socket.IO events: the page's rules."""
    return jsonify({**schema(), "events": events.describe()})


@bp.post("/api/models/check")
def check_model():
    """Validates one config as the page types it; a 400 lists every bad field in `errors`."""
    data = body()
    slot = data.get("slot", "a")
    if slot not in ("a", "b"):
        raise ConfigError("slot", "must be a or b (whose defaults fill the fields not sent)")
    cfg = validate(data.get("config"), defaults_for("ab".index(slot)))
    return jsonify(config=cfg.to_dict(), params=param_count(cfg), macs=mac_count(cfg))


@bp.post("/api/predict")
def predict():
    """One image ("image") or up to 64 ("images"), classified by each run named in "runs"."""
    data = body()
    if "images" in data and "image" in data:
        raise ConfigError("images", "send either image (one) or images (a list), not both")
    batched = "images" in data
    images = parse_images(data["images"]) if batched else parse_image(data.get("image"))[None]
    ids = data.get("runs")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_PREDICT_RUNS:
        raise ConfigError("runs", f"must be a list of 1 to {MAX_PREDICT_RUNS} run ids")
    manager, predictor = runs(), current_app.extensions["predictor"]
    out = []
    for run_id in ids:
        run = manager.get(run_id)
        probs = predictor.probabilities(run, manager.weights_path(run.id), images)
        labels = probs.argmax(1).tolist()
        if batched:
            out.append({"run_id": run.id, "labels": labels, "probs": probs.tolist()})
        else:
            out.append({"run_id": run.id, "label": labels[0], "probs": probs[0].tolist()})
    return jsonify(predictions=out)


@bp.get("/api/samples")
def samples():
    """The first `count` test images of a data set, for the page's prediction grid."""
    name = request.args.get("dataset", "mnist")
    if name not in DATASETS:
        raise ConfigError("dataset", "must be one of " + ", ".join(DATASETS))
    count = request.args.get("count", "16")
    if not re.fullmatch(r"\d{1,3}", count, re.ASCII) or not 1 <= int(count) <= MAX_SAMPLES:
        raise ConfigError("count", f"must be a whole number from 1 to {MAX_SAMPLES}")
    images, labels = test_set(name)
    picked = images[: int(count)].float().div(255)
    return jsonify(images=picked.tolist(), labels=labels[: int(count)].tolist())


@bp.get("/api/datasets")
def list_datasets():
    """Every dataset on disk or downloadable, with class names, counts and shape; nothing is decoded."""
    return jsonify(datasets=[info.to_dict() for info in datasets.listing(current_app.config["DATA_DIR"])])


def test_set(name):
    cache = current_app.extensions.setdefault("test_sets", {})
    if name not in cache:
        cache[name] = data.load(name, current_app.config["DATA_DIR"], train=False)
    return cache[name]
