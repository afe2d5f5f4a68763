"""The config panels' architecture in headless Chromium against a real server: the layer builder with the
server's shapes per row, refused stacks named on their row, presets that pick the architecture, the diagram,
the learning-rate plan and the note on a pair trained on two datasets. Nothing here trains.
"""

from urllib.parse import urlparse

import pytest
from conftest import server_in
from playwright.sync_api import expect

# a server with a fresh runs folder decodes CIFAR-10's PNGs once, the first time a view asks for its images
# (the grid of test images does as soon as a panel picks it): the server answers slowly meanwhile
FIRST_CIFAR = 300_000  # ms


@pytest.fixture(scope="module")
def quiet_server(data_dir, tmp_path_factory):
    """A server with no runs: the panels open on each slot's defaults, whatever other tests trained."""
    yield from server_in(data_dir, tmp_path_factory.mktemp("builder"))


class Tab:
    """A page on the quiet server, with its console errors and the body of every check it asked for."""

    def __init__(self, page, server):
        self.page, self.server = page, server
        self.errors, self.checks = [], []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", self._request)

    def _console(self, message):
        # a refused check is a 400, which the browser reports as a failed resource; nothing else may fail
        if message.type == "error" and not message.location.get("url", "").endswith("/api/models/check"):
            self.errors.append(message.text)

    def _request(self, request):
        if request.method == "POST" and urlparse(request.url).path == "/api/models/check":
            self.checks.append(request.post_data_json)

    def open(self):
        self.page.goto(self.server.url + "/")
        self.page.wait_for_selector("body[data-ready]")
        return self.page

    def last_config(self, slot):
        return [c for c in self.checks if c["slot"] == slot][-1]["config"]

    def check(self, config, slot="a"):
        return self.server.post("/api/models/check", json={"config": config, "slot": slot})


@pytest.fixture
def tab(browser, quiet_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield Tab(context.new_page(), quiet_server)
    context.close()


def panel(page, slot):
    return page.get_by_role("group", name=f"Model {slot.upper()}")


def add(group, layer_type, **values):
    """Adds a layer at the end of the stack and types its fields."""
    group.get_by_label("new layer", exact=True).select_option(layer_type)
    group.get_by_role("button", name="Add layer").click()
    row = group.locator(".layers .layer:not(.added)").last
    for name, value in values.items():
        row.get_by_label(name, exact=True).fill(str(value))
    return row


def layer(group, n, layer_type):
    return group.get_by_role("group", name=f"layer {n}: {layer_type}")


def test_the_builder_shows_each_layers_shape_as_it_grows(tab):
    page = tab.open()
    a = panel(page, "a")
    a.get_by_label("architecture", exact=True).select_option("layers")
    expect(a.get_by_label("channels", exact=True)).to_be_hidden()  # the stack replaces the shorthand
    add(a, "conv", out=8)
    expect(layer(a, 1, "conv").locator(".layer-shape")).to_have_text("8×28×28")
    expect(layer(a, 1, "conv").locator(".layer-size")).to_have_text("80 params · 56.4 k MACs")
    add(a, "relu")
    add(a, "maxpool")
    expect(layer(a, 3, "maxpool").locator(".layer-shape")).to_have_text("8×14×14")
    add(a, "linear", out=32)
    expect(layer(a, 4, "linear").locator(".layer-shape")).to_have_text("32")
    # the rule's own rows: the flatten a linear after a map implies, and the last layer to the 10 classes
    added = a.locator(".layers .layer.added")
    expect(added.locator(".layer-type")).to_have_text(["flatten1 · flatten", "fc · linear"])
    expect(added.locator(".layer-shape")).to_have_text(["1568", "10"])
    stack = [
        {"type": "conv", "out": 8, "kernel": 3, "stride": 1, "padding": "same"},
        {"type": "relu"},
        {"type": "maxpool", "size": 2},
        {"type": "linear", "out": 32},
    ]
    answer = tab.check({"layers": stack}).json()
    expect(a.locator(".params")).to_have_text(f"{answer['params']:,} parameters")
    sent = tab.last_config("a")
    assert sent["layers"] == stack and sent["model"] is None
    # the diagram: a block per row, the input first, with its shape
    blocks = a.get_by_role("list", name="Diagram of model A").locator(".block-shape")
    expect(blocks).to_have_text(["1×28×28", "8×28×28", "8×28×28", "8×14×14", "1568", "32", "10"])

    # reordered and removed: the rows follow, and so do the shapes
    layer(a, 3, "maxpool").get_by_role("button", name="move layer 3 up").click()
    expect(a.locator(".layers .layer:not(.added) .layer-type")).to_have_text(["conv", "maxpool", "relu", "linear"])
    expect(layer(a, 2, "maxpool").locator(".layer-shape")).to_have_text("8×14×14")
    layer(a, 1, "conv").get_by_role("button", name="remove layer 1").click()
    expect(a.locator(".layers .layer:not(.added) .layer-type")).to_have_text(["maxpool", "relu", "linear"])
    expect(layer(a, 1, "maxpool").locator(".layer-shape")).to_have_text("1×14×14")
    assert [row["type"] for row in tab.last_config("a")["layers"]] == ["maxpool", "relu", "linear"]
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    assert tab.errors == []


def test_a_refused_stack_is_named_on_its_layer_row(tab):
    page = tab.open()
    a = panel(page, "a")
    a.get_by_label("architecture", exact=True).select_option("layers")
    add(a, "conv", out=8)
    add(a, "maxpool", size=8)  # 28 -> 3
    expect(layer(a, 2, "maxpool").locator(".layer-shape")).to_have_text("8×3×3")
    add(a, "maxpool", size=8)  # a 3x3 map takes no window of 8
    row = layer(a, 3, "maxpool")
    expect(row.locator(".layer-message")).to_have_text("maxpool of size 8 does not fit the 3x3 map")
    expect(row).to_have_attribute("data-invalid", "true")
    expect(layer(a, 2, "maxpool")).to_have_attribute("data-invalid", "false")
    expect(a.locator(".params")).to_have_text("parameters: fix the marked layer")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    expect(page.locator("#train-message")).to_contain_text("Model A has an invalid value")

    row.get_by_label("size", exact=True).fill("2")  # fixed: the row and Train are back
    expect(row.locator(".layer-shape")).to_have_text("8×1×1")
    expect(row).to_have_attribute("data-invalid", "false")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled()

    add(a, "batchnorm")
    a.get_by_label("batch_size", exact=True).fill("1")  # a batch of one has no statistics to normalise by
    expect(layer(a, 4, "batchnorm").locator(".layer-message")).to_have_text(
        "batchnorm needs batches of at least 2 images; batch_size is 1"
    )
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    # a field the server refuses inside a layer is named there too
    a.get_by_label("batch_size", exact=True).fill("64")
    layer(a, 1, "conv").get_by_label("out", exact=True).fill("0")
    expect(layer(a, 1, "conv").locator(".layer-message")).to_have_text("out must be a whole number from 1 to 1024")
    assert tab.errors == []


def test_the_lab_preset_on_cifar10_and_a_pair_on_two_datasets(tab):
    page = tab.open()
    a, b = panel(page, "a"), panel(page, "b")
    dataset = a.get_by_label("dataset", exact=True)
    expect(dataset.locator("option[value=cifar10]")).to_have_text("cifar10 (32×32 RGB, 10 classes)")
    dataset.select_option("cifar10")
    a.get_by_label("preset", exact=True).select_option(label="CIFAR-10 lab network (2 convs, 256 hidden)")
    expect(a.get_by_label("architecture", exact=True)).to_have_value("layers")
    expect(a.locator(".params")).to_have_text("1,070,794 parameters")
    expect(a.locator(".macs")).to_have_text("6.65 M MACs per image")
    expect(layer(a, 1, "conv").locator(".layer-shape")).to_have_text("32×32×32")
    expect(layer(a, 8, "linear").locator(".layer-shape")).to_have_text("256")
    blocks = a.get_by_role("list", name="Diagram of model A").locator(".block-shape")
    expect(blocks.first).to_have_text("3×32×32")
    # two datasets: said before anyone trains
    note = page.locator("#pair-note")
    expect(note).to_have_text("A trains on cifar10 and B on mnist: their accuracies cannot be compared.")
    expect(note).to_be_visible()
    b.get_by_label("dataset", exact=True).select_option("cifar10")
    expect(note).to_have_text("", timeout=FIRST_CIFAR)
    expect(note).to_be_hidden()
    # augment goes as the object it is
    a.get_by_label("crop", exact=True).fill("4")
    a.get_by_label("flip", exact=True).check()
    expect(a.locator(".params")).to_have_attribute("aria-busy", "false", timeout=FIRST_CIFAR)
    expect(a.locator(".params")).to_have_text("1,070,794 parameters")
    assert tab.last_config("a")["augment"] == {"crop": 4, "flip": True}
    assert tab.errors == []


def test_resnet18_and_the_shorthand_name_their_architecture(tab):
    page = tab.open()
    b = panel(page, "b")
    b.get_by_label("preset", exact=True).select_option(label="ResNet18 (torchvision, from scratch)")
    expect(b.get_by_label("architecture", exact=True)).to_have_value("resnet18")
    expect(b.get_by_label("channels", exact=True)).to_be_hidden()
    expect(b.locator(".builder")).to_be_hidden()
    params = tab.check({"model": "resnet18"}, "b").json()["params"]
    expect(b.locator(".params")).to_have_text(f"{params:,} parameters")
    names = b.get_by_role("list", name="Diagram of model B").locator(".block-name")
    expect(names).to_have_text(
        ["input", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    )
    sent = tab.last_config("b")
    assert sent["model"] == "resnet18" and sent["layers"] is None
    b.get_by_label("architecture", exact=True).select_option("shorthand")  # back to channels + kernel_size
    expect(b.get_by_label("channels", exact=True)).to_be_visible()
    expect(b.locator(".params")).to_have_text("5,178 parameters")
    expect(names).to_have_count(11)  # conv, relu, pool three times (no pool after the last), flatten, fc
    sent = tab.last_config("b")
    assert sent["model"] is None and sent["layers"] is None
    assert tab.errors == []


def test_the_learning_rate_plan_follows_the_schedule(tab):
    page = tab.open()
    a = panel(page, "a")
    chart = a.get_by_role("img", name="Learning rate A")
    expect(chart).to_have_attribute("data-peak", "0.001")  # no schedule: flat at lr
    a.get_by_label("schedule", exact=True).select_option("cosine")
    a.get_by_label("epochs", exact=True).fill("4")
    plan = tab.check({"schedule": "cosine", "epochs": 4}).json()["lr_plan"]
    expect(chart).to_have_attribute("data-points", str(len(plan)))
    drawn = chart.evaluate("c => Chart.getChart(c).data.datasets[0].data.map((p) => [p.x, p.y])")
    assert [v for point in drawn for v in point] == pytest.approx([v for point in plan for v in point])
    assert drawn[-1][0] == 4 and drawn[-1][1] < drawn[0][1]  # cosine: down to the end of the run
    assert tab.errors == []
