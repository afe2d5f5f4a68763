"""Routes that explain ended runs: analysis, confusion cells, disagreements, gradients, activations, and the
seeds of a group trained with repeats."""

from collections import OrderedDict

from flask import Blueprint, current_app, jsonify, request

from cnn import events, infer, verdict
from cnn.config import ConfigError

from .api import body, dataset_info, group_members, runs, stored_analysis, test_labels, test_set, waiting_in

bp = Blueprint("insight", __name__)
GALLERY = 24  # images per gallery answer
CACHED_ANALYSES = 8  # each holds two numbers per test image
PER_IMAGE = ("predictions", "confidences", "labels")  # big per-test-image arrays, served through the galleries
SEED_FACTS = ("accuracy", "macro_f1", "train_seconds")  # what the seeds table shows of each analysis


class NotReady(RuntimeError):
    """The question needs an analysis the run does not have (yet)."""


def analysis_of(run):
    if run.analysis != "ready":
        if run.status in ("queued", "running"):
            reason = f"Run {run.id} is still {run.status}; its analysis is computed when it ends."
        elif run.analysis == "pending":
            reason = f"The analysis of run {run.id} is being computed; it takes a few seconds."
        else:
            reason = f"Run {run.id} has no analysis: it {run.status} before it had weights, or the analysis failed."
        raise NotReady(reason)
    cache = current_app.extensions.setdefault("analyses", OrderedDict())  # run id -> analysis, oldest use first
    if run.id not in cache:
        result = stored_analysis(run)
        if result is None:
            raise NotReady(f"Run {run.id} has no analysis: its analysis file is gone or unreadable.")
        if "classes" not in result:  # written before datasets had names and shapes: 28x28 grey, ten classes
            result["classes"] = dataset_info(run.config.dataset).classes
            result["shape"] = [1, 28, 28]
        cache[run.id] = result
        if len(cache) > CACHED_ANALYSES:
            cache.popitem(last=False)
    cache.move_to_end(run.id)
    return cache[run.id]


def images_at(run, indices):
    """Test images of the run's dataset at the side it trained at."""
    images, _ = test_set(run.config.dataset, run.config.image_size)
    return [images[i].float().div(255).tolist() for i in indices]


@bp.get("/api/runs/<run_id>/analysis")
def analysis(run_id):
    result = analysis_of(runs().get(run_id))
    return jsonify({k: v for k, v in result.items() if k not in PER_IMAGE})


def class_arg(name, classes=10):
    value = request.args.get(name, "")
    if not value.isdigit() or not value.isascii() or not int(value) < classes:
        raise ConfigError(name, f"must be a class number from 0 to {classes - 1}")
    return int(value)


def labels_of(run, result):
    """The test labels the analysis was made against, or a 409 when a folder dataset changed since: its
    stored predictions are of other images."""
    labels = test_labels(run.config.dataset)
    if result.get("labels", labels) != labels:
        raise NotReady(
            f"{run.config.dataset} changed since run {run.id} was analysed; its predictions are of other images."
        )
    return labels


@bp.get("/api/runs/<run_id>/confusion")
def confusion_cell(run_id):
    """Test images of true class `true` that the run predicted as `pred`."""
    run = runs().get(run_id)
    result = analysis_of(run)
    n = len(result["classes"])
    true, pred = class_arg("true", n), class_arg("pred", n)
    labels = labels_of(run, result)
    hits = [i for i, (y, p) in enumerate(zip(labels, result["predictions"], strict=True)) if y == true and p == pred]
    shown = hits[:GALLERY]
    return jsonify(
        count=len(hits),
        indices=shown,
        confidences=[result["confidences"][i] for i in shown],
        images=images_at(run, shown),
    )


@bp.get("/api/compare")
def compare():
    """Test images that exactly one of two runs classifies correctly, and McNemar's exact test on their counts:
    is trained model A better than trained model B on this test set?"""
    for name in ("a", "b"):
        if not request.args.get(name):
            raise ConfigError(name, "must name a run id, as in /api/compare?a=<id>&b=<id>")
    a, b = runs().get(request.args.get("a")), runs().get(request.args.get("b"))
    if a.config.dataset != b.config.dataset:
        raise ConfigError("b", "must be trained on the same dataset as a to compare them")
    ra, rb = analysis_of(a), analysis_of(b)
    labels = labels_of(a, ra)
    labels_of(b, rb)
    only = {"a": [], "b": []}
    for i, (y, pa, pb) in enumerate(zip(labels, ra["predictions"], rb["predictions"], strict=True)):
        if (pa == y) != (pb == y):
            only["a" if pa == y else "b"].append(i)

    def items(indices):
        shown = indices[:GALLERY]
        return [
            {
                "index": i,
                "label": labels[i],
                "image": img,
                "pred_a": ra["predictions"][i],
                "conf_a": ra["confidences"][i],
                "pred_b": rb["predictions"][i],
                "conf_b": rb["confidences"][i],
            }
            for i, img in zip(shown, images_at(a, shown), strict=True)
        ]

    # is trained model A better than trained model B on this test set? McNemar's exact test on the pairs
    right_a = [pa == y for pa, y in zip(ra["predictions"], labels, strict=True)]
    right_b = [pb == y for pb, y in zip(rb["predictions"], labels, strict=True)]
    _, _, p = verdict.mcnemar(right_a, right_b)
    return jsonify(
        a=a.id,
        b=b.id,
        count_only_a=len(only["a"]),
        count_only_b=len(only["b"]),
        p_value=p,
        method="mcnemar_exact",
        better=None if p >= verdict.ALPHA else "a" if len(only["a"]) > len(only["b"]) else "b",
        sentence=verdict.pair_sentence(len(only["a"]), len(only["b"]), p),
        only_a=items(only["a"]),
        only_b=items(only["b"]),
    )


@bp.get("/api/runs/<run_id>/gradients")
def gradients(run_id):
    samples = runs().get(run_id).metrics["gradients"]
    names = samples[0]["layers"] if samples else []
    layers = [
        {
            "name": name,
            "samples_seen": [s["samples_seen"] for s in samples],
            "mean_abs": [s["mean_abs"][i] for s in samples],
            "max_abs": [s["max_abs"][i] for s in samples],
        }
        for i, name in enumerate(names)
    ]
    return jsonify(layers=layers)


@bp.post("/api/runs/<run_id>/activations")
def layer_activations(run_id):
    image = infer.parse_image(body().get("image"))
    manager, predictor = runs(), current_app.extensions["predictor"]
    run = manager.get(run_id)
    _, model, meta, norm = predictor.entry(run, manager.weights_path(run.id))
    if list(image.shape) != list(meta["shape"]):
        c, h, w = meta["shape"]
        raise ConfigError("image", f"must be a {'grey' if c == 1 else 'RGB'} {h}x{w} image for this run")
    maps = infer.activations(model, image.mul(255)[None], norm)
    return jsonify(layers=[{"name": name, "shape": list(m.shape), "maps": m.tolist()} for name, m in maps])


def seed_facts(run):
    """SEED_FACTS of a run's analysis (None each without one), kept per run: the files are large and a
    page waiting for a group's verdict asks every few seconds. -> None when the analysis is ready but its
    file is gone or unreadable."""
    if run.analysis != "ready":
        return dict.fromkeys(SEED_FACTS)
    try:
        key = (run.id, runs().analysis_path(run.id).stat().st_mtime_ns)
    except OSError:
        return None
    cache = current_app.extensions.setdefault("seed_facts", {})
    if key not in cache:
        result = stored_analysis(run)
        if result is None:
            return None
        cache[key] = {name: result.get(name) for name in SEED_FACTS}
    return cache[key]


def seed_row(run):
    """One seed of the seeds table; a seed whose analysis file is lost is left out of the means, as the
    verdict leaves it out, and says why."""
    facts = seed_facts(run)
    row = {
        "id": run.id,
        "model": "ab"[run.slot],
        "seed": run.config.seed,
        "repeat": run.repeat,
        "status": run.status,
        "analysis": run.analysis if facts is not None else "missing",
        "used": run.status == events.FINISHED and facts is not None and run.analysis == "ready",
        **(facts or dict.fromkeys(SEED_FACTS)),
    }
    if facts is None:
        row["error"] = f"The analysis file of run {run.id} is gone or unreadable, so this seed is left out."
    return row


def mean_of(rows, name):
    values = [row[name] for row in rows if row[name] is not None]
    return sum(values) / len(values) if values else None


@bp.get("/api/groups/<group>/seeds")
def group_seeds(group):
    """Every seed of a group, model by model, with its test accuracy, macro F1 and training time, and each
    model's mean over the seeds the verdict uses: finished, with an analysis (failed or stopped ones are left
    out). `waiting` counts the runs the verdict still waits for."""
    members = sorted(group_members(group), key=lambda r: (r.slot, r.repeat))
    rows = [seed_row(r) for r in members]
    mean = {}
    for model in "ab":
        used = [row for row in rows if row["model"] == model and row["used"]]
        mean[model] = {"seeds": len(used), **{name: mean_of(used, name) for name in SEED_FACTS}}
    repeats = max(r.repeats for r in members)
    return jsonify(group=group, repeats=repeats, waiting=len(waiting_in(members)), seeds=rows, mean=mean)
