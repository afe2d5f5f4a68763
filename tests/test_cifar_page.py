"""The issue's flow end to end, as a user does it in headless Chromium against a real server of its own: a
network built layer by layer on CIFAR-10 (each row's shape updating as it grows) beside a shorthand one,
both trained on a small subset from the page, then a real CIFAR-10 test PNG uploaded and read by both
models by class name.

Waits for what the page publishes (data attributes, texts), never for "network idle".
"""

import re
from urllib.parse import urlparse

import pytest
from conftest import server_in
from playwright.sync_api import expect
from test_builder_page import FIRST_CIFAR, add, layer, panel
from test_images_page import ONE_OF

SUBSET = {"train_samples": 512, "epochs": 1, "batch_size": 64}  # a real run of a few seconds
ANSWER = 30_000  # ms; a check's answer on two cores other tests share
VERDICT = re.compile(r"/api/groups/[^/]+/verdict$")
TRAINED = 300_000  # ms; two workers import torch and read CIFAR-10 on two shared cores


def watch(page):
    """Keeps what goes wrong in the page (console errors and their addresses) and the body of every POST
    /api/predict."""
    page.errors, page.predicts = [], []

    def console(message):
        # the browser reports these answers as failed resources: a check refused while a row is half typed (a
        # conv with no out yet) is a 400, and the pair's verdict a 409 until its analyses are stored (the page
        # asks again). Nothing else may fail
        url = message.location.get("url", "")
        expected = url.endswith("/api/models/check") or (VERDICT.search(url) and "409" in message.text)
        if message.type == "error" and not expected:
            page.errors.append(f"{message.text} {url}")

    def request(r):
        if r.method == "POST" and urlparse(r.url).path == "/api/predict":
            page.predicts.append(r.post_data_json)

    page.on("console", console)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", request)


@pytest.fixture
def tab(browser, data_dir, tmp_path_factory):
    """A watched tab on a server of its own: a fresh runs folder, so no earlier pair is on the page."""
    for api in server_in(data_dir, tmp_path_factory.mktemp("cifar-page")):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.server = api
        watch(page)
        page.goto(api.url + "/")
        page.wait_for_selector("body[data-ready]")
        yield page
        context.close()


@pytest.fixture
def cifar_png(data_dir, tmp_path):
    """A real CIFAR-10 test image of a ship, the file's own bytes copied out of the data folder."""
    source = sorted((data_dir / "CIFAR10" / "test" / "ship").glob("*.png"))[0]
    path = tmp_path / "ship.png"
    path.write_bytes(source.read_bytes())
    return path


def fill(group, **values):
    for name, value in values.items():
        group.get_by_label(name, exact=True).fill(str(value))


def test_a_built_network_trains_on_a_cifar10_subset_and_reads_an_uploaded_png(tab, cifar_png):
    page = tab
    a, b = panel(page, "a"), panel(page, "b")
    a.get_by_label("dataset", exact=True).select_option("cifar10")
    # with no run yet the grid shows panel A's dataset as checked; the first look at CIFAR-10 on a fresh
    # cache decodes its PNGs, and the server answers slowly meanwhile
    expect(page.locator("#grid-title")).to_have_text("16 test images of cifar10", timeout=FIRST_CIFAR)
    a.get_by_label("architecture", exact=True).select_option("layers")

    # built row by row, each edit's shapes from the server, on 3x32x32 input
    added = a.locator(".layers .layer.added")  # the rule's rows: the implied flatten, the last layer to 10

    def shapes(n, layer_type, shape, flatten):
        expect(layer(a, n, layer_type).locator(".layer-shape")).to_have_text(shape, timeout=ANSWER)
        expect(added.locator(".layer-type")).to_have_text(["flatten1 · flatten", "fc · linear"])
        expect(added.locator(".layer-shape")).to_have_text([flatten, "10"])

    add(a, "conv", out=8)
    shapes(1, "conv", "8×32×32", "8192")
    add(a, "relu")
    shapes(2, "relu", "8×32×32", "8192")
    add(a, "maxpool")
    shapes(3, "maxpool", "8×16×16", "2048")
    add(a, "linear", out=32)
    shapes(4, "linear", "32", "2048")
    add(a, "relu")
    shapes(5, "relu", "32", "2048")
    # the flatten sits where the map ends, before the hidden linear layer; the last layer comes last
    rows = a.locator(".layers .layer")
    expect(rows.locator(".layer-type")).to_have_text(
        ["conv", "relu", "maxpool", "flatten1 · flatten", "linear", "relu", "fc · linear"]
    )
    stack = [
        {"type": "conv", "out": 8, "kernel": 3, "stride": 1, "padding": "same"},
        {"type": "relu"},
        {"type": "maxpool", "size": 2},
        {"type": "linear", "out": 32},
        {"type": "relu"},
    ]
    checked = {"config": {"dataset": "cifar10", "layers": stack}, "slot": "a"}
    checked = page.server.post("/api/models/check", json=checked).json()
    params, built = checked["params"], checked["config"]["layers"]  # the stack, normalised as a run keeps it
    expect(a.locator(".params")).to_have_text(f"{params:,} parameters")
    blocks = a.get_by_role("list", name="Diagram of model A").locator(".block-shape")
    expect(blocks).to_have_text(["3×32×32", "8×32×32", "8×32×32", "8×16×16", "2048", "32", "32", "10"])

    # B: the classic shorthand, on the same dataset (so the pair can be compared)
    b.get_by_label("dataset", exact=True).select_option("cifar10")
    b.get_by_label("architecture", exact=True).select_option("shorthand")
    fill(b, channels="4-8")
    for group in (a, b):
        fill(group, **SUBSET)
    expect(page.locator("#pair-note")).to_be_hidden()
    for group in (a, b):
        expect(group.locator(".params")).to_have_attribute("aria-busy", "false")
    train = page.get_by_role("button", name="Train", exact=True)
    expect(train).to_be_enabled()
    train.click()

    for slot in "ab":
        run = page.locator(f"#panel-{slot} .run")
        expect(run).to_have_attribute("data-status", "finished", timeout=TRAINED)
        expect(run.locator(".status")).to_contain_text("finished")
    ids = [page.get_attribute(f"#panel-{slot} .run", "data-run-id") for slot in "ab"]
    runs = [page.server.get(f"/api/runs/{run_id}").json() for run_id in ids]
    assert [run["status"] for run in runs] == ["finished", "finished"], runs
    configs = [run["config"] for run in runs]  # what the form sent, as the user typed it
    assert configs[0]["layers"] == built and configs[0]["model"] is None
    assert configs[1]["channels"] == [4, 8] and configs[1]["layers"] is None
    for config in configs:
        assert config["dataset"] == "cifar10"
        assert {key: config[key] for key in SUBSET} == SUBSET
    # the curves got points: the training batches' and the epoch's test result (two at least)
    for chart in ("Loss", "Accuracy"):
        canvas = page.get_by_role("img", name=chart, exact=True)
        for slot in "ab":
            expect(canvas).to_have_attribute(f"data-points-{slot}", re.compile(r"^([2-9]|\d\d+)$"))

    page.locator("#upload-file").set_input_files(cifar_png)
    for slot in "ab":
        box = page.locator(f"#upload-probs-{slot}")
        expect(box).to_have_attribute("data-name", ONE_OF, timeout=ANSWER)
        names = box.locator(".prob-row .digit")
        expect(names).to_have_count(5)  # the five most likely CIFAR-10 classes, best first
        assert all(ONE_OF.match(n) for n in names.all_inner_texts())
        assert box.locator(".prob-row.best .digit").inner_text() == box.get_attribute("data-name")
    expect(page.locator("#upload-source")).to_have_text("ship.png, resized by the server to 32×32 RGB")
    files = [body for body in page.predicts if "file" in body]
    assert len(files) == 1 and files[0]["runs"] == ids  # one request, both trained models
    expect(page.locator("#upload-message")).to_have_text("")
    assert page.errors == []
