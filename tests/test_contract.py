"""The declared contracts against what the real server does: the config schema, the events, batched predict."""

import re
from pathlib import Path

import pytest
from conftest import QUICK, server_in
from test_server import Listener, read_test_digits

from cnn import events
from cnn.config import FIELDS

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    """A server of its own: the runs made here must not become the pair that the page tests load."""
    yield from server_in(data_dir, tmp_path_factory.mktemp("contract"))


def check(server, config, slot="a"):
    return server.post("/api/models/check", json={"config": config, "slot": slot})


def properties(server):
    return server.get("/api/schema").json()["config"]["properties"]


def test_every_field_the_server_accepts_is_in_the_schema(server):
    answer = server.get("/api/schema").json()
    assert answer["fields"] == list(answer["config"]["properties"]) == list(FIELDS)
    assert set(check(server, {}).json()["config"]) == set(FIELDS)  # what a valid config carries back
    refused = check(server, {"colour": "red"}).json()
    assert refused["field"] == "colour" and "not a config field" in refused["error"]
    for slot in "ab":
        assert check(server, {}, slot).json()["config"] == answer["defaults"][slot]
    for preset in answer["presets"].values():
        assert check(server, preset["values"]).status_code == 200


def bounded(prop):
    """(schema of the number itself, whether the field is a list of them)."""
    if prop.get("type") == "array":
        return prop["items"], True
    return next((p for p in prop.get("anyOf", []) if p.get("type") != "null"), prop), False


NESTED = ("layers", "model", "dataset", "augment")  # objects, a name pattern: held to the server below
CONTEXT = {"patience": {"validation": 0.1}}  # early stopping needs a validation share


FOLDER_ONLY = ("image_size",)  # refused on the built-in datasets: its bounds are held on a folder in test_image_size.py


@pytest.mark.parametrize("name", [n for n in FIELDS if n not in NESTED + FOLDER_ONLY])
def test_the_schema_bounds_are_the_ones_the_server_enforces(server, name):
    prop = properties(server)[name]
    number, listed = bounded(prop)
    wrap = (lambda v: [v]) if listed else (lambda v: v)
    context = CONTEXT.get(name, {})

    def check(server, config):
        return server.post("/api/models/check", json={"config": {**context, **config}, "slot": "a"})

    if "enum" in number:
        for value in number["enum"]:
            assert check(server, {name: value}).status_code == 200, value
        bad = 4 if number["type"] == "integer" else "none-of-these"
        assert check(server, {name: bad}).json()["errors"] == {
            name: "must be one of " + ", ".join(map(str, number["enum"]))
        }
        return
    low, high = number["minimum"], number["maximum"]
    if name == "train_samples":  # the schema's cap is a folder dataset's; MNIST's is its size
        assert high >= 60_000
        high = 60_000
    step = 1 if number["type"] == "integer" else (low / 10 or high / 100)
    for value, ok in ((low, True), (high, True), (low - step, False), (high + step, False)):
        answer = check(server, {name: wrap(value)})
        assert (answer.status_code == 200) is ok, (name, value, answer.text)
        if not ok:
            assert str(low if number["type"] == "integer" else f"{low:g}") in answer.json()["errors"][name]
    if listed:
        assert check(server, {name: [low] * prop["maxItems"]}).status_code == 200
        assert check(server, {name: [low] * (prop["maxItems"] + 1)}).status_code == 400
        assert check(server, {name: []}).status_code == 400


def test_the_nested_fields_are_declared_and_enforced(server):
    props = properties(server)
    assert set(NESTED) <= set(props)
    layer = check(server, {"layers": [{"type": "conv", "out": 8}, {"type": "gelu"}]}).json()
    assert [row["type"] for row in layer["layers"]] == ["conv", "gelu", "flatten", "linear"]
    assert check(server, {"model": "resnet18"}).json()["params"] == 11_175_370  # grey MNIST: a one-channel conv1
    assert check(server, {"dataset": "cifar10"}).json()["input_shape"] == [3, 32, 32]
    assert check(server, {"augment": {"crop": 8, "flip": True}}).status_code == 200
    assert check(server, {"augment": {"crop": 9}}).json()["errors"] == {"augment": answer_rule(server, "augment")}
    assert check(server, {"dataset": "../data"}).json()["errors"] == {"dataset": answer_rule(server, "dataset")}


def answer_rule(server, name):
    return server.get("/api/schema").json()["rules"][name]


def test_a_check_lists_every_bad_field_with_its_rule(server):
    answer = check(server, {"channels": "16-32-", "kernel_size": "5.0", "lr": "1e400", "batch_size": "", "epochs": "0"})
    assert answer.status_code == 400
    assert set(answer.json()["errors"]) == {"channels", "kernel_size", "lr", "batch_size", "epochs"}
    assert answer.json()["field"] == "channels"  # the first in the form's order
    good = check(server, {"channels": "16-32-64"}).json()
    assert (good["params"], good["macs"]) == (54_666, 1_950_592)


def readme_events():
    """Event names in the README's Socket.IO table (first column), and the line on client events."""
    text = README.read_text()
    section = text[text.index("### Socket.IO events") :]
    start = section.index("| event |")
    table = section[start : section.index("\n\n", start)]
    names = set()
    for row in table.splitlines()[2:]:
        names.update(re.findall(r"`(\w+)`", row.split("|")[1]))
    return names, section


def test_every_declared_event_is_in_the_readme():
    names, section = readme_events()
    assert names == set(events.TO_CLIENT), names ^ set(events.TO_CLIENT)
    for name in events.TO_SERVER:
        assert f"`{name}`" in section


def test_every_emitted_event_is_declared_with_its_payload_fields(server, data_dir):
    listener = Listener(server.url)
    try:
        a, b = server.start([QUICK, {**QUICK, "channels": "4"}])
        for run_id in (a, b):
            listener.wait_for(events.ANALYSIS_READY, run_id)
        stopped = server.start([{**QUICK, "epochs": 5}])[0]
        listener.wait_for(events.BATCH, stopped)
        server.post(f"/api/runs/{stopped}/stop")
        listener.wait_for(events.RUN_STOPPED, stopped)
        listener.sio.emit(events.STOP_RUN, {"run_id": "nope"})
        listener.wait_for(events.REQUEST_FAILED)
    finally:
        listener.close()
    seen = set()
    for name, payload in listener.events:
        assert name in events.TO_CLIENT, f"{name} is emitted but not declared in cnn/events.py"
        fields, _ = events.TO_CLIENT[name]
        assert set(payload) == set(fields), (name, set(payload) ^ set(fields))
        seen.add(name)
    # a real pair of runs, a stop and a refused request: every event but a failure
    assert seen >= set(events.TO_CLIENT) - {events.RUN_FAILED, events.ANALYSIS_FAILED}


def test_statuses_move_only_as_declared():
    assert events.advance(events.QUEUED, events.RUN_STARTED) == events.RUNNING
    assert events.advance(events.RUNNING, events.RUN_FINISHED) == events.FINISHED
    assert events.advance(events.FINISHED, events.RUN_STOPPED) == events.FINISHED  # a late stop changes nothing
    assert events.advance(events.STOPPED, events.RUN_STARTED) == events.STOPPED
    assert events.advance(events.RUNNING, events.BATCH) == events.RUNNING


def test_batched_predict_agrees_with_one_image_at_a_time(server, data_dir):
    (run_id,) = server.start([{"train_samples": 2000, "epochs": 1, "channels": "8-8"}])
    assert server.wait(run_id)["status"] == "finished"
    images, _ = read_test_digits(data_dir, 16)
    batch = server.post("/api/predict", json={"images": images.tolist(), "runs": [run_id, run_id]}).json()
    assert [p["run_id"] for p in batch["predictions"]] == [run_id, run_id]
    (many,) = batch["predictions"][:1]
    assert len(many["labels"]) == len(many["probs"]) == 16
    for i, image in enumerate(images):
        (one,) = server.post("/api/predict", json={"image": image.tolist(), "runs": [run_id]}).json()["predictions"]
        assert one["label"] == many["labels"][i]
        assert one["probs"] == pytest.approx(many["probs"][i], abs=1e-5)
    too_many = server.post("/api/predict", json={"images": images.tolist() * 5, "runs": [run_id]})
    assert too_many.status_code == 400 and "1 to 64 images" in too_many.json()["error"]


def test_history_holds_the_newest_pair_with_metrics_and_lists_the_rest(server):
    old = server.start([{**QUICK, "train_samples": 64}])[0]
    server.wait(old)
    a, b = server.start([{**QUICK, "train_samples": 64}, {**QUICK, "train_samples": 64, "channels": "4"}])
    for run_id in (a, b):
        server.wait(run_id)
    late = Listener(server.url)
    try:
        history = late.wait_for(events.HISTORY)[0]
    finally:
        late.close()
    assert [r["id"] for r in history["runs"]] == [a, b]
    assert all(r["metrics"]["epoch"] for r in history["runs"])
    older = {r["id"]: r for r in history["older"]}
    assert old in older and "metrics" not in older[old]
    assert server.get(f"/api/runs/{old}").json()["metrics"]["epoch"]  # fetched on demand
