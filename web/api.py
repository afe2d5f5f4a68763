"""REST routes under /api. Every bad input answers 4xx with {"error": sentence}."""

import json
import re

import torch
from flask import Blueprint, current_app, jsonify, render_template, request

from cnn import datasets, events, models
from cnn.augment import augment
from cnn.config import ConfigError, defaults_for, schema, validate
from cnn.infer import parse_file, parse_image, parse_images
from cnn.runs import Busy, UnknownRun
from cnn.schedules import planned_rates
from cnn.verdict import verdict

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
    """Each model config validated and its network measured on its dataset: an impossible stack is refused
    here, before a worker starts."""
    given = data.get("models")
    if not isinstance(given, list) or not 1 <= len(given) <= 2:
        raise ConfigError("models", "must be a list of one or two model configs")
    configs = []
    for i, raw in enumerate(given):
        try:
            cfg = validate(raw, defaults_for(i))
            info = dataset_info(cfg.dataset, cfg.image_size)
            models.describe(cfg, info.shape, len(info.classes))
            configs.append(cfg)
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
    unknown = sorted(set(data) - {"mode", "models", "repeats"})
    if unknown:
        raise ConfigError(unknown[0], "is not understood; send mode, models and repeats")
    configs = model_configs(data)
    started = runs().start(configs, data.get("mode", "parallel"), data.get("repeats", 1))
    listed = [
        {"id": r.id, "config": r.config.to_dict(), "seed": r.config.seed, "slot": r.slot, "group": r.group}
        for r in started
    ]
    return jsonify(runs=listed), 202


@bp.get("/api/runs")
def list_runs():
    return jsonify(runs=[r.summary(metrics=False) for r in runs().newest_first()])


@bp.get("/api/runs/<run_id>")
def get_run(run_id):
    return jsonify(runs().get(run_id).summary())


@bp.post("/api/runs/<run_id>/stop")
def stop_run(run_id):
    return jsonify(runs().stop(run_id).summary(metrics=False))


def group_members(group):
    """The runs started together as `group`, newest first; a 404 when there are none."""
    members = [r for r in runs().newest_first() if r.group == group]
    if not members:
        raise UnknownRun(f"group: no group with id {group!r}; a run's group is in GET /api/runs")
    return members


def waiting_in(members):
    """The runs still training, or finished and not yet analysed: the verdict waits for them."""
    return [
        r
        for r in members
        if r.status in events.ACTIVE or (r.status == events.FINISHED and r.analysis in (None, "pending"))
    ]


@bp.get("/api/groups/<group>/verdict")
def group_verdict(group):
    """Is the gap real? McNemar per seed pair and Welch's t over the seeds; 409 until every run has ended and
    been analysed."""
    members = group_members(group)
    waiting = waiting_in(members)
    if waiting:
        raise Busy(
            f"{len(waiting)} of the group's {len(members)} runs are still training or being analysed; "
            "ask again when they end."
        )
    analyses = {r.id: a for r in members if (a := stored_analysis(r)) is not None}  # a lost file: left out
    names = sorted({r.config.dataset for r in members})
    if len(names) > 1:
        raise ConfigError(
            "group", f"was trained on {' and '.join(names)}: accuracies on different test sets cannot be compared"
        )
    labels = test_labels(names[0])
    for r in members:
        stored = analyses.get(r.id, {}).get("labels")
        if stored is not None and stored != labels:
            raise Busy(f"{names[0]} changed since run {r.id} was analysed; its predictions are of other images.")
    summaries = [
        {"id": r.id, "slot": r.slot, "repeat": r.repeat, "seed": r.config.seed, "status": r.status} for r in members
    ]
    return jsonify(verdict(summaries, analyses, labels))


def stored_analysis(run):
    """The run's analysis as its file holds it, or None when it has none ready, or its file is gone or
    unreadable (removed by hand, a full disk): such a run counts as one without an analysis."""
    if run.analysis != "ready":
        return None
    try:
        return json.loads(runs().analysis_path(run.id).read_text())
    except (OSError, ValueError):
        return None


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
    info = dataset_info(cfg.dataset, cfg.image_size)
    rows = models.describe(cfg, info.shape, len(info.classes))
    return jsonify(
        config=cfg.to_dict(),
        params=sum(r["params"] for r in rows),
        macs=sum(r["macs"] for r in rows),
        layers=rows,
        input_shape=info.shape,
        classes=info.classes,
        lr_plan=planned_rates(cfg),
    )


def dataset_info(name, size=None):
    """A dataset's Info (a folder's at side `size`, a config's image_size), or a 400 naming `dataset` when it
    is not on disk as a folder dataset must be."""
    try:
        return datasets.describe(name, current_app.config["DATA_DIR"], size)
    except datasets.DataError as exc:
        raise ConfigError("dataset", str(exc)) from None


@bp.post("/api/predict")
def predict():
    """One image ("image"), up to 64 ("images") or an image file ("file", base64 of a PNG or JPEG, resized to
    each run's dataset shape), classified by each run named in "runs"."""
    data = body()
    given = [k for k in ("image", "images", "file") if k in data]
    if len(given) != 1:
        raise ConfigError("image", "send exactly one of image (one), images (a list) or file (a PNG or JPEG)")
    batched = "images" in data
    images = None
    if batched:
        images = parse_images(data["images"])
    elif "image" in data:
        images = parse_image(data["image"])[None]
    ids = data.get("runs")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_PREDICT_RUNS:
        raise ConfigError("runs", f"must be a list of 1 to {MAX_PREDICT_RUNS} run ids")
    manager, predictor = runs(), current_app.extensions["predictor"]
    out = []
    for run_id in ids:
        run = manager.get(run_id)
        path = manager.weights_path(run.id)
        shown = images if images is not None else parse_file(data["file"], predictor.meta(run, path)["shape"])[None]
        probs = predictor.probabilities(run, path, shown, "images" if batched else "image")
        labels = probs.argmax(1).tolist()
        if batched:
            out.append({"run_id": run.id, "labels": labels, "probs": probs.tolist()})
        else:
            out.append({"run_id": run.id, "label": labels[0], "probs": probs[0].tolist()})
    return jsonify(predictions=out)


@bp.get("/api/samples")
def samples():
    """The first `count` images of a dataset's test split (or train, with split=train), pixels in [0, 1] as
    (count, channels, height, width), for the page's prediction grid and the dataset view; a folder's at
    side image_size (as a run's config has it; default 32)."""
    name = datasets.check_name(request.args.get("dataset", "mnist"))
    size = validate({"dataset": name, "image_size": request.args.get("image_size")}).image_size
    count = request.args.get("count", "16")
    if not re.fullmatch(r"\d{1,3}", count, re.ASCII) or not 1 <= int(count) <= MAX_SAMPLES:
        raise ConfigError("count", f"must be a whole number from 1 to {MAX_SAMPLES}")
    split = request.args.get("split", "test")
    if split not in ("test", "train"):
        raise ConfigError("split", "must be test or train")
    info = dataset_info(name, size)
    images, labels = test_set(name, size) if split == "test" else train_set(name, size)
    picked = images[: int(count)].float().div(255)
    return jsonify(images=picked.tolist(), labels=labels[: int(count)].tolist(), classes=info.classes, shape=info.shape)


@bp.post("/api/augment/preview")
def augment_preview():
    """The first `count` training images of a dataset, augmented as a run with `augment` would see them:
    pixels in [0, 1] as (count, channels, height, width), beside the originals."""
    data = body()
    unknown = sorted(set(data) - {"dataset", "image_size", "augment", "count", "seed"})
    if unknown:
        raise ConfigError(unknown[0], "is not understood; send dataset, image_size, augment, count and seed")
    name = datasets.check_name(data.get("dataset", "mnist"))
    fields = {"dataset": name, "image_size": data.get("image_size"), "augment": data.get("augment", {})}
    cfg = validate({**fields, "seed": data.get("seed", 0)})
    info = dataset_info(name, cfg.image_size)
    count = data.get("count", 16)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SAMPLES:
        raise ConfigError("count", f"must be a whole number from 1 to {MAX_SAMPLES}")
    images, labels = train_set(name, cfg.image_size)
    original = images[:count]
    generator = torch.Generator().manual_seed(cfg.seed)
    changed = augment(original, cfg.augment.crop, cfg.augment.flip, generator)
    return jsonify(
        original=original.float().div(255).tolist(),
        augmented=changed.float().div(255).tolist(),
        labels=labels[:count].tolist(),
        classes=info.classes,
    )


@bp.get("/api/datasets")
def list_datasets():
    """Every dataset on disk or downloadable, with class names, counts and shape; nothing is decoded."""
    return jsonify(datasets=[info.to_dict() for info in datasets.listing(current_app.config["DATA_DIR"])])


def test_set(name, size=None):
    """A dataset's test split, uint8 (N, C, H, W)."""
    return split_of(name, train=False, size=size)


def test_labels(name):
    """A dataset's test labels as a list; a folder's are read from its file names, no image decoded."""
    if name in datasets.BUILTIN:
        return test_set(name)[1].tolist()  # held in memory with the images
    dataset_info(name)  # a 400 naming `dataset` when the folder is not there
    return datasets.labels(name, current_app.config["DATA_DIR"], train=False).tolist()


def in_thread(fn, *args):
    """fn(*args) in a real OS thread under eventlet (the server), directly otherwise (tests, the CLI)."""
    try:
        from eventlet import patcher, tpool
    except ImportError:
        return fn(*args)
    return tpool.execute(fn, *args) if patcher.is_monkey_patched("thread") else fn(*args)


def train_set(name, size=None):
    return split_of(name, train=True, size=size)


def split_of(name, train, size=None):
    """Built-in splits are held in memory; a folder's is read from the decoded cache each time, whose key
    follows the files, so a changed folder is seen at once. Decoding runs in an OS thread (eventlet's tpool),
    so live curves keep flowing; a dataset not on disk is never downloaded from a request."""
    if not dataset_info(name, size).on_disk:
        raise ConfigError("dataset", f"{name} is not on disk yet: the first run of it downloads it")
    data_dir, cache_dir = current_app.config["DATA_DIR"], runs().cache_dir
    load = lambda: in_thread(datasets.load, name, data_dir, train, cache_dir, size)  # noqa: E731
    if name not in datasets.BUILTIN:
        return load()
    cache = current_app.extensions.setdefault("splits", {})
    if (name, train) not in cache:
        cache[name, train] = load()
    return cache[name, train]
