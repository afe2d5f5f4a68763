"""The page in headless Chromium (Debian's chromium via Playwright) against a real server.

Each test opens a fresh tab and waits for real state the page publishes (data attributes,
statuses, messages), never for "network idle": Socket.IO long-polls for ever.
"""

import os
import re
import signal
import subprocess
from urllib.parse import urlparse

import numpy as np
import pytest
from conftest import QUICK, server_in
from playwright.sync_api import expect

# short real runs of tiny models: long enough to stop or reload mid-run, quick to start
LONG = {"channels": "4-8", "train_samples": 2048, "epochs": 8, "batch_size": 32}
TIMEOUT = 90_000  # ms; a worker takes a few seconds to import torch and load MNIST


class Tab:
    """A page plus what it logged: console errors (and the address each came from), failed, outside and
    API requests, and the body of every POST /api/predict."""

    def __init__(self, page, server):
        self.page, self.server = page, server
        self.errors, self.failed, self.outside, self.requests = [], [], [], []
        self.error_urls, self.predicts = [], []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("request", self._request)

    def _console(self, message):
        if message.type == "error":
            self.errors.append(message.text)
            self.error_urls.append(message.location.get("url", ""))

    def _request(self, request):
        if urlparse(request.url).hostname != "127.0.0.1":
            self.outside.append(request.url)
        if "/api/" in request.url:
            self.requests.append((request.method, urlparse(request.url).path))
        if request.method == "POST" and urlparse(request.url).path == "/api/predict":
            self.predicts.append(request.post_data_json)

    def open(self):
        self.page.goto(self.server.url + "/")
        self.page.wait_for_selector("body[data-ready]")
        return self.page

    def points(self, chart, slot):
        return int(self.page.get_attribute(f"canvas[aria-label={chart}]", f"data-points-{slot}"))

    def wait_points(self, at_least):
        """Both charts have at least this many points from each of A and B."""
        self.page.wait_for_function(
            """n => ['Loss', 'Accuracy'].every(name => {
                const c = document.querySelector(`canvas[aria-label=${name}]`);
                return +c.dataset.pointsA >= n && +c.dataset.pointsB >= n; })""",
            arg=at_least,
            timeout=TIMEOUT,
        )

    def run_ids(self):
        return [self.page.get_attribute(f"#panel-{s} .run", "data-run-id") for s in "ab"]


@pytest.fixture
def tab(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield Tab(context.new_page(), server)
    context.close()


@pytest.fixture(scope="module")
def empty_server(data_dir, tmp_path_factory):
    """A server that has no runs: its page shows each slot's defaults, whatever other tests trained."""
    yield from server_in(data_dir, tmp_path_factory.mktemp("empty"))


@pytest.fixture
def new_tab(browser, empty_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield Tab(context.new_page(), empty_server)
    context.close()


@pytest.fixture
def own_tab(browser, data_dir, tmp_path):
    """A tab on a server of its own, for a test that counts every request the page makes: no earlier pair
    is there for the page to load and ask about."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    for api in server_in(data_dir, tmp_path):
        yield Tab(context.new_page(), api)
    context.close()


def panel(page, slot):
    return page.get_by_role("group", name=f"Model {slot.upper()}")


def stop_all(server, ids):
    for run_id in ids:
        server.post(f"/api/runs/{run_id}/stop")


def worker_pid(run_id):
    """The worker's command line carries its run id (in the weights path)."""
    out = subprocess.run(["pgrep", "-f", f"cnn.worker.*{run_id}"], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out.strip() else None


def fill(page, slot, **values):
    group = panel(page, slot)
    for field, value in values.items():
        group.get_by_label(field, exact=True).fill(str(value))


def test_page_loads_without_errors_or_outside_requests(new_tab):
    tab = new_tab
    page = tab.open()
    expect(page.locator("#grid .cell")).to_have_count(16)  # the test images came from our server
    expect(panel(page, "a").locator(".params")).to_have_text("54,666 parameters")
    expect(panel(page, "b").locator(".params")).to_have_text("5,178 parameters")
    for name in ("Train", "Stop"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    for chart in ("Loss", "Accuracy"):
        expect(page.get_by_role("img", name=chart, exact=True)).to_be_visible()
    expect(page.get_by_label("Draw a digit")).to_be_visible()
    for field in ("channels", "kernel_size", "optimizer", "lr", "batch_size", "epochs", "dataset", "seed"):
        expect(panel(page, "b").get_by_label(field, exact=True)).to_be_visible()
    assert tab.errors == []
    assert tab.failed == []
    assert tab.outside == []


def test_only_whitelisted_library_files_are_served(server):
    answer = server.get("/vendor/chart.umd.js")
    assert answer.status_code == 200 and "javascript" in answer.headers["Content-Type"]
    assert server.get("/vendor/socket.io.esm.min.js").status_code == 200
    unlisted = ["/vendor/package.json", "/vendor/..%2Fpackage.json", "/vendor/chart.js"]
    unlisted.append("/node_modules/chart.js/package.json")
    for path in unlisted:
        assert server.get(path).status_code == 404, path


@pytest.mark.parametrize("scheme, background", [("light", "rgb(246, 247, 249)"), ("dark", "rgb(15, 18, 22)")])
def test_follows_the_colour_scheme(browser, server, scheme, background):
    page = browser.new_page(color_scheme=scheme)
    page.goto(server.url + "/")
    expect(page.locator("body")).to_have_css("background-color", background)
    page.close()


def test_chart_colours_follow_a_live_scheme_change(browser, server):
    page = browser.new_page(color_scheme="light")
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready]")
    colours = """name => {
        const scales = Chart.getChart(document.querySelector(`canvas[aria-label=${name}]`)).options.scales;
        return [scales.x.ticks.color, scales.y.title.color, scales.x.grid.color, scales.y.grid.color];
    }"""
    light = ["#5b6470", "#5b6470", "rgba(100, 110, 120, 0.18)", "rgba(100, 110, 120, 0.18)"]
    dark = ["#9aa4b1", "#9aa4b1", "rgba(160, 170, 180, 0.16)", "rgba(160, 170, 180, 0.16)"]
    assert page.evaluate(colours, "Loss") == light
    page.emulate_media(color_scheme="dark")  # no reload: the system switched while the page was open
    for chart in ("Loss", "Accuracy"):
        expect(page.locator(f"canvas[aria-label={chart}]")).to_have_attribute("data-ink", "#9aa4b1")
        assert page.evaluate(colours, chart) == dark
    page.close()


LEFT = "async (args) => (await import('/static/js/progress.js')).secondsLeft(args)"


def test_time_left_counts_the_test_evaluation_after_each_epoch(tab):
    page = tab.open()
    run = {"samplesLeft": 3000, "rate": 1000, "epochs": 4}
    # three epochs still to log, each followed by a 2 s evaluation as long as the last one took
    assert page.evaluate(LEFT, {**run, "epochsLogged": 1, "lastEvalSeconds": 2}) == pytest.approx(3 + 3 * 2)
    assert page.evaluate(LEFT, {**run, "epochsLogged": 4, "lastEvalSeconds": 2}) == pytest.approx(3)
    # before the first epoch: a guess from the test set's size, never nothing
    assert page.evaluate(LEFT, {**run, "epochsLogged": 0, "testSamples": 9000}) == pytest.approx(3 + 4 * 3)


FORM = "async (f) => (await import('/static/js/runlog.js')).formText(f)"


def test_the_form_line_compares_the_choice_with_the_other_finalists(tab):
    page = tab.open()
    fast = {"form": "plain", "precision": "bf16", "threads": 1, "autotune": True, "measured": True, "seconds": 2.1}
    # the final: the fastest fp32 and bf16 forms of the first passes (plain/fp32 and plain/bf16, there 5.0k and
    # 7.0k) timed again against each other at each thread count. pool_first/bf16's 6.5k from the first passes
    # was not in it: the choice and the comparison said are the final's
    rates = {"plain/fp32": 4000, "pool_first/fp32": 4800, "plain/bf16": 5200, "pool_first/bf16": 6500}
    rates |= {"plain/bf16/1t": 6000, "plain/fp32/1t": 5100}
    text = page.evaluate(FORM, {**fast, "rates": rates})
    assert text == "fast form: plain, bf16, 1 thread · measured (2.1 s): 6.0k images/s vs 5.2k for plain, bf16"
    # no final (one thread allotted): every candidate is compared
    text = page.evaluate(FORM, {**fast, "rates": {"plain/bf16": 6000, "plain/fp32": 5500}})
    assert text.endswith(": 6.0k images/s vs 5.5k for plain, fp32")


THIN = """async () => {
  const { ThinLine, BUCKETS } = await import('/static/js/thin.js');
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const line = Array.from({ length: 100000 }, (_, k) => ({ x: 64 * (k + 1), y: random() + (k === 61234 ? 5 : 0) }));
  const grown = line.slice(0, 40000), thin = new ThinLine();
  thin.read(grown);
  grown.push(...line.slice(40000)); // a series handed whole grows outside the chart between draws
  const drawn = thin.read(grown), fresh = new ThinLine().read(line);
  // every stretch of ten buckets keeps its lowest and highest point
  const chunk = 10 * thin.width, worst = [];
  for (let start = 0; start < line[line.length - 1].x; start += chunk) {
    const ys = (points) => points.filter((p) => p.x >= start && p.x < start + chunk).map((p) => p.y);
    const all = ys(line), kept = ys(drawn);
    if (all.length) worst.push(Math.min(...all) === Math.min(...kept) && Math.max(...all) === Math.max(...kept));
  }
  // what a chart of it hands Chart.js (before the decimation plugin's own pass), and the points it counts
  const { CurveChart } = await import('/static/js/charts.js');
  const canvas = document.body.appendChild(document.createElement('canvas'));
  const chart = new CurveChart(canvas, { yTitle: 'loss' });
  for (const p of line) chart.addPoint('a', 'batch', p.x, p.y);
  chart.draw();
  const handed = Chart.getChart(canvas).data.datasets[0];
  const index = new Map(line.map((p, k) => [p, k]));
  const order = drawn.map((p) => index.get(p));
  return {
    n: drawn.length, cap: 4 * BUCKETS, same: JSON.stringify(drawn) === JSON.stringify(fresh),
    ordered: order.every((k, j) => k !== undefined && (j === 0 || k > order[j - 1])),
    stretches: worst.length, kept: worst.every(Boolean), peak: drawn.some((p) => p.y > 5),
    handed: (handed._data ?? handed.data).length, counted: canvas.dataset.pointsA,
  };
}"""


def test_a_long_training_line_is_drawn_thinned_keeping_its_highs_and_lows(tab):
    page = tab.open()
    got = page.evaluate(THIN)
    assert 1000 < got["n"] <= got["cap"]  # from 100k points
    assert got["same"] and got["ordered"] and got["peak"]  # grown in steps as drawn at once; one spike kept
    assert got["stretches"] > 100 and got["kept"]
    assert got["handed"] == got["n"] and got["counted"] == "100000"  # the chart draws it thinned, counts it all


def test_panels_stack_on_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = Tab(context.new_page(), server).open()
    a, b = (page.get_by_role("group", name=f"Model {s}").bounding_box() for s in "AB")
    assert b["y"] >= a["y"] + a["height"] and b["x"] == a["x"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    context.close()


def test_parameter_count_follows_typing(tab):
    page = tab.open()
    a = panel(page, "a")
    a.get_by_label("channels", exact=True).fill("8-8-8")
    expect(a.locator(".params")).to_have_text("5,178 parameters")
    a.get_by_label("kernel_size", exact=True).fill("5")  # typed: the server says which sizes it takes
    expect(a.locator(".params")).to_have_text(f"{8 * 26 + 2 * 8 * (8 * 25 + 1) + 10 * (8 * 49 + 1):,} parameters")


@pytest.mark.parametrize(
    "slot, field, value, message",
    [
        ("a", "lr", "2", "must be a number from 1e-05 to 1"),
        ("b", "channels", "8-x-8", "must be 1 to 6 layers of 1 to 256 channels, like 16-32-64"),
        (
            "b",
            "train_samples",
            "0",
            "must be a whole number from 1 to the dataset's training-set size (1000000 at most)",
        ),
    ],
)
def test_invalid_value_shows_message_and_sends_nothing(tab, slot, field, value, message):
    page = tab.open()
    box = panel(page, slot).get_by_label(field, exact=True)
    box.fill(value)
    # the rule alone: the label above names the field, and the rule replaces the field's hint
    expect(page.locator(f"#{slot}-{field}-message")).to_have_text(message)
    expect(panel(page, slot).locator(f"[data-field={field}] small")).to_be_hidden()
    expect(box).to_have_attribute("aria-invalid", "true")
    # Train is off while a value is refused, and says why; a click on it sends nothing
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    expect(page.locator("#train-message")).to_contain_text(f"Model {slot.upper()} has an invalid value")
    page.get_by_role("button", name="Train", exact=True).click(force=True)
    page.wait_for_timeout(300)
    assert ("POST", "/api/runs") not in tab.requests


def test_both_invalid_panels_are_named_by_train(tab):
    page = tab.open()
    fill(page, "a", lr="2")
    fill(page, "b", epochs="0", seed="-1")
    expect(page.locator("#train-message")).to_have_text(
        "Models A and B have invalid values; fix the marked fields first."
    )
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    for slot, field in (("a", "lr"), ("b", "epochs"), ("b", "seed")):  # every refused field is marked
        expect(panel(page, slot).get_by_label(field, exact=True)).to_have_attribute("aria-invalid", "true")
    assert ("POST", "/api/runs") not in tab.requests


def test_server_error_shows_next_to_its_field(tab):
    page = tab.open()
    answer = {"error": "models[1].lr: must be a number from 1e-05 to 1", "field": "models[1].lr"}
    page.route("**/api/runs", lambda route: route.fulfill(status=400, json=answer))
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.locator("#b-lr-message")).to_have_text("must be a number from 1e-05 to 1")
    refused = "The server refused model B's lr: must be a number from 1e-05 to 1"
    expect(page.locator("#train-message")).to_have_text(refused)


def shown(value):
    """A config value as a form field holds it: lists as 16-32-64, null as empty."""
    if isinstance(value, list):
        return "-".join(map(str, value))
    return "" if value is None else str(value)


@pytest.mark.parametrize(
    "field, value",
    [
        ("channels", "16-32-"),
        ("channels", "-16-32"),
        ("kernel_size", "5.0"),
        ("lr", "1e400"),
        ("batch_size", ""),
        ("epochs", "0"),
    ],
)
def test_a_value_the_server_refuses_shows_the_servers_own_message(tab, field, value):
    page = tab.open()
    answer = tab.server.post("/api/models/check", json={"config": {field: value}, "slot": "a"})
    assert answer.status_code == 400
    rule = answer.json()["errors"][field]
    box = panel(page, "a").get_by_label(field, exact=True)
    box.fill(value)
    expect(page.locator(f"#a-{field}-message")).to_have_text(rule)
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(panel(page, "a").locator(f"[data-field={field}] small")).to_be_hidden()
    expect(panel(page, "a").locator(".params")).to_have_text("parameters: fix the marked field")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    expect(page.locator("#train-message")).to_have_text("Model A has an invalid value; fix the marked field first.")
    assert ("POST", "/api/runs") not in tab.requests
    # the browser reports the check's 400 as a failed resource; nothing else may go wrong
    assert all(url.endswith("/api/models/check") for url in tab.error_urls), tab.errors
    box.fill(shown(tab.server.get("/api/schema").json()["defaults"]["a"][field]))  # fixed: Train is back
    expect(box).to_have_attribute("aria-invalid", "false")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    expect(page.locator("#train-message")).to_have_text("")


def test_a_check_that_cannot_reach_the_server_says_so_and_keeps_train_off(tab):
    page = tab.open()
    expect(panel(page, "b").locator(".params")).to_have_text("5,178 parameters")
    page.route("**/api/models/check", lambda route: route.abort())
    fill(page, "a", epochs="2")
    expect(page.locator("#train-message")).to_have_text("The server cannot be reached; is it still running?")
    expect(panel(page, "a").locator(".params")).to_have_text("parameters: not checked, the server cannot be reached")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    fill(page, "b", epochs="2")
    expect(panel(page, "b").locator(".params")).to_have_text("parameters: not checked, the server cannot be reached")
    page.unroute("**/api/models/check")
    fill(page, "a", epochs="3")  # the server answers again: B, untouched, is asked again too
    expect(panel(page, "b").locator(".params")).to_have_text("5,178 parameters")
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    expect(page.locator("#train-message")).to_have_text("")


# fields the form shows in a way of their own: the architecture (layers or a named model instead of the
# shorthand's channels and kernel_size), the dataset (what the server lists) and augment (a nested object)
ARCHITECTURE = ("layers", "model")
OWN_WAY = {*ARCHITECTURE, "dataset", "augment"}


def architecture(values):
    """The architecture a config names, as the panel's choice reads it: a named model, layers or the shorthand."""
    return values.get("model") or ("layers" if values.get("layers") is not None else "shorthand")


def expect_preset(group, values):
    """The panel holds a preset's values: its architecture, its shorthand fields or its layer rows."""
    expect(group.get_by_label("architecture", exact=True)).to_have_value(architecture(values))
    for name, value in values.items():
        if name not in ARCHITECTURE:
            expect(group.get_by_label(name, exact=True)).to_have_value(shown(value))
    if architecture(values) == "layers":
        rows = group.locator(".layers .layer:not(.added) .layer-type")
        expect(rows).to_have_text([layer["type"] for layer in values["layers"]])


def test_the_form_is_built_from_the_schema(new_tab):
    tab = new_tab
    page = tab.open()
    schema = tab.server.get("/api/schema").json()
    properties = schema["config"]["properties"]
    listed = [d["name"] for d in tab.server.get("/api/datasets").json()["datasets"]]
    for slot in "ab":
        group = panel(page, slot)
        defaults = schema["defaults"][slot]
        # a box per field but the architecture's two, which the architecture choice stands for
        expect(group.locator(".fields .field")).to_have_count(len(schema["fields"]) - len(ARCHITECTURE))
        for name in schema["fields"]:
            if name in OWN_WAY:
                continue
            box = group.get_by_label(name, exact=True)
            if not defaults["dataset"].startswith(properties[name].get("only_for", "")):
                expect(box).to_be_hidden()  # declared for other datasets: image_size for folder ones only
                continue
            expect(box).to_be_visible()
            expect(box).to_have_value(shown(defaults[name]))
            hint = group.locator(f"[data-field={name}] small")
            expect(hint).to_contain_text(properties[name]["description"])
            if box.evaluate("b => b.tagName") == "INPUT":  # a typed box also says what the server allows
                expect(hint).to_contain_text(schema["rules"][name].removeprefix("must be "))
            choices = [str(c) for c in properties[name].get("enum", [])]
            if choices:  # offered as options (words) or as suggestions to a typed box (numbers)
                options = group.locator(f"[data-field={name}] option")
                expect(options).to_have_count(len(choices))
                assert [o.get_attribute("value") for o in options.all()] == choices
        # the dataset: picked from what the server lists
        dataset = group.get_by_label("dataset", exact=True)
        expect(dataset.locator("option")).to_have_count(len(listed))
        assert [o.get_attribute("value") for o in dataset.locator("option").all()] == listed
        expect(dataset).to_have_value(defaults["dataset"])
        # augment: a number box and a checkbox, one per sub-field
        expect(group.get_by_label("crop", exact=True)).to_have_value(str(defaults["augment"]["crop"]))
        expect(group.get_by_label("flip", exact=True)).to_be_checked(checked=defaults["augment"]["flip"])
        # the architecture: the shorthand, a layer stack, or each named model the schema lists
        choice = group.get_by_label("architecture", exact=True)
        expect(choice).to_have_value(architecture(defaults))
        named = [t["const"] for t in properties["model"]["anyOf"] if "const" in t]
        assert [o.get_attribute("value") for o in choice.locator("option").all()] == ["shorthand", "layers", *named]
    a = panel(page, "a")
    held = dict(schema["defaults"]["a"])  # what panel A holds: each preset sets some fields, the rest stay
    for preset in schema["presets"].values():
        a.get_by_label("preset", exact=True).select_option(label=preset["label"])
        expect_preset(a, preset["values"])
        held.update(preset["values"])
        params = tab.server.post("/api/models/check", json={"config": held, "slot": "a"}).json()["params"]
        expect(a.locator(".params")).to_have_text(f"{params:,} parameters")
    fill(page, "b", channels="4")
    page.get_by_role("button", name=re.compile(r"pair")).click()
    for slot, key in zip("ab", schema["pair"], strict=True):
        expect_preset(panel(page, slot), schema["presets"][key]["values"])
    assert tab.errors == []


def test_every_server_event_is_handled_or_deliberately_ignored(tab):
    page = tab.open()
    declared = set(tab.server.get("/api/schema").json()["events"]["to_client"])
    handled, ignored = page.evaluate(
        "async () => { const m = await import('/static/js/store.js'); return [m.HANDLED, m.IGNORED]; }"
    )
    assert not set(handled) & set(ignored)
    assert declared - set(handled) - set(ignored) == set(), "events the page neither handles nor ignores"
    assert set(handled) | set(ignored) <= declared, "names the server does not send"
    assert tab.errors == []  # socket.js says so in the console for any gap


# Drives the page's store (no DOM, no network) with one run's events as they come live, and with the
# same run as a reload's history carries it; returns both stores' view of the run and what each said.
STORE = """async (contract) => {
    const { Store } = await import('/static/js/store.js');
    const watch = (store) => { const seen = []; store.subscribe((c) => seen.push(c.kind)); return seen; };
    const record = {id: 'r1', group: 'g1', slot: 0, status: 'queued', config: {epochs: 1}, info: {}};
    const batch = (n) => ({run_id: 'r1', epoch: 1, step: n, steps: 2, samples_seen: 64 * n, loss: 1 / n, acc: 0.5});
    const epoch = {run_id: 'r1', epoch: 1, test_loss: 0.4, test_acc: 0.9};
    const live = new Store(contract), liveSaid = watch(live);
    live.apply('history', {runs: [], older: []});
    live.apply('runs_created', {group: 'g1', runs: [record]});
    live.apply('run_started', {run_id: 'r1', epochs: 1});
    for (const p of [batch(1), batch(2), batch(2), epoch]) live.apply(p.step ? 'batch' : 'epoch', p);
    live.apply('run_finished', {run_id: 'r1', samples_seen: 128});
    live.apply('run_started', {run_id: 'r1'});  // late and out of order: a finished run stays finished
    live.apply('batch', {...batch(1), run_id: 'other'});  // a run never heard of waits for a listing
    const reloaded = new Store(contract), reloadedSaid = watch(reloaded);
    const stored = {...record, status: 'finished', info: {epochs: 1, samples_seen: 128},
                    metrics: {batch: [batch(1), batch(2)], epoch: [epoch], gradients: []}};
    reloaded.apply('history', {runs: [stored], older: [{id: 'old'}]});
    reloaded.apply('batch', {...batch(3), run_id: 'old'});  // an older group's event: dropped
    const view = (s) => ({status: s.runs.a.status, batch: s.runs.a.batch.length, epoch: s.runs.a.epoch.length,
                          seen: s.runs.a.info.samples_seen, b: s.runs.b, buffered: [...s.buffered.keys()]});
    return {live: view(live), reloaded: view(reloaded), liveSaid, reloadedSaid};
}"""


def test_the_store_applies_live_events_and_history_alike(tab):
    page = tab.open()
    contract = tab.server.get("/api/schema").json()["events"]
    got = page.evaluate(STORE, contract)
    assert got["live"] == {**got["reloaded"], "buffered": ["other"]}
    assert got["live"]["status"] == "finished" and got["live"]["batch"] == 2 and got["live"]["epoch"] == 1
    assert got["reloaded"]["buffered"] == []
    # live: a change per event, so views redraw as it goes; history: one reset, then ready
    assert got["liveSaid"][:3] == ["reset", "ready", "reset"]
    assert {"batch", "epoch", "status", "unknown"} <= set(got["liveSaid"])
    assert got["reloadedSaid"] == ["reset", "ready"]


# A store that missed a group's runs_created hears an event of one of its runs: it lists the runs once
# and adopts the newest group, by slot.
CATCH_UP = """async ([contract, runId]) => {
    const { Store } = await import('/static/js/store.js');
    const { mountSync } = await import('/static/js/sync.js');
    const store = new Store(contract);
    mountSync(store);
    store.apply('history', {runs: [], older: []});
    store.apply('run_stopped', {run_id: runId});
    for (let i = 0; i < 100 && !store.runs.b; i++) await new Promise((done) => setTimeout(done, 50));
    return [store.runs.a?.id, store.runs.b?.id, store.runs.a?.config.channels];
}"""


def test_events_of_a_missed_group_adopt_it_from_a_listing(tab):
    page = tab.open()
    ids = tab.server.start([{**QUICK, "channels": "4"}, {**QUICK, "channels": "8"}])
    stop_all(tab.server, ids)
    contract = tab.server.get("/api/schema").json()["events"]
    assert page.evaluate(CATCH_UP, [contract, ids[1]]) == [ids[0], ids[1], [4]]


def test_the_grid_asks_once_per_model_per_epoch(own_tab):
    tab = own_tab
    page = tab.open()
    # epochs of a second or more, however fast the machine: each one's answers are asked for before the next ends
    tiny = {"channels": "4", "train_samples": 16384, "epochs": 2}
    fill(page, "a", **tiny)
    fill(page, "b", **tiny)
    page.get_by_role("button", name="Train", exact=True).click()
    for slot in "ab":
        expect(page.locator(f"#panel-{slot} .run")).to_have_attribute("data-status", "finished", timeout=TIMEOUT)
        expect(page.locator("#grid")).to_have_attribute(f"data-right-{slot}", re.compile(r"^\d+$"))
    expect(page.locator("#grid .guess.right, #grid .guess.wrong")).to_have_count(2 * 16)
    page.wait_for_timeout(1000)  # any request still to come is counted too
    grid = [body for body in tab.predicts if "images" in body]
    for run_id in tab.run_ids():  # refreshed after each of its two epochs, and never more often
        assert sum(body["runs"] == [run_id] for body in grid) == 2, grid
    assert len(grid) == 2 * 2
    assert all(len(body["images"]) == 16 for body in grid)
    assert len(tab.predicts) == len(grid)  # and nothing else asked per image
    assert tab.errors == []


def test_train_draws_both_runs_on_both_charts_and_stop_ends_them(tab):
    page = tab.open()
    for slot, channels in (("a", "8-16"), ("b", "4-8")):
        group = panel(page, slot)
        group.get_by_label("channels", exact=True).fill(channels)
        group.get_by_label("train_samples", exact=True).fill("2048")
        group.get_by_label("epochs", exact=True).fill("8")
        group.get_by_label("batch_size", exact=True).fill("32")
    shown_before = tab.run_ids()  # the page opens on the newest pair, whose points must not count
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(
        "before => ['a', 'b'].every((s, i) => {"
        " const id = document.querySelector(`#panel-${s} .run`).dataset.runId; return id && id !== before[i]; })",
        arg=shown_before,
        timeout=TIMEOUT,
    )
    tab.wait_points(3)
    ids = tab.run_ids()
    assert all(ids) and ids[0] != ids[1]
    for slot, run_id, channels in zip("ab", ids, ([8, 16], [4, 8]), strict=True):
        run = tab.server.get(f"/api/runs/{run_id}").json()
        assert run["config"]["channels"] == channels
        # the form the engine chose for this run, said under its progress as run_started reported it
        chosen = run["info"]["fast_form"]
        expect(page.locator(f"#panel-{slot} .fast-form")).to_contain_text(
            re.compile(rf"^fast form: {chosen['form']}, {chosen['precision']}, {chosen['threads']} threads? · ")
        )

    page.get_by_role("button", name="Stop", exact=True).click()
    for slot in "ab":
        expect(page.locator(f"#panel-{slot} .run")).to_have_attribute("data-status", "stopped", timeout=TIMEOUT)
        # a stopped run looks stopped: said in words, and its bar muted (a live or finished one is opaque)
        expect(page.locator(f"#panel-{slot} .progress-text")).to_contain_text(re.compile(r"^stopped at \d+%"))
        expect(page.locator(f"#panel-{slot} progress")).to_have_css("opacity", "0.6")
    assert [tab.server.get(f"/api/runs/{i}").json()["status"] for i in ids] == ["stopped", "stopped"]
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    assert tab.errors == []


def test_a_second_tab_shows_a_new_pair_at_once_by_slot(tab, browser):
    other_context = browser.new_context(viewport={"width": 1280, "height": 900})
    other = Tab(other_context.new_page(), tab.server)
    second = other.open()
    # what the second tab showed in each panel the first time it showed a run there
    second.evaluate("""() => {
        window.firstShown = {};
        for (const slot of 'ab') {
            const run = document.querySelector(`#panel-${slot} .run`);
            new MutationObserver(() => {
                if (run.dataset.runId && !window.firstShown[slot])
                    window.firstShown[slot] = {id: run.dataset.runId, status: run.dataset.status};
            }).observe(run, {attributes: true});
        }
    }""")
    page = tab.open()
    fill(page, "a", channels="8-8", **QUICK)
    fill(page, "b", channels="4-8", **QUICK)
    page.get_by_role("button", name="Train", exact=True).click()
    second.wait_for_function("window.firstShown.a && window.firstShown.b", timeout=TIMEOUT)
    first_shown = second.evaluate("window.firstShown")
    ids = [first_shown[s]["id"] for s in "ab"]
    assert [tab.server.get(f"/api/runs/{i}").json()["slot"] for i in ids] == [0, 1]  # A is slot 0
    assert [tab.server.get(f"/api/runs/{i}").json()["config"]["channels"] for i in ids] == [[8, 8], [4, 8]]
    # shown before any run_started: a worker needs seconds to import torch
    assert [first_shown[s]["status"] for s in "ab"] == ["queued", "queued"]
    expect(panel(second, "b").get_by_label("channels", exact=True)).to_have_value("4-8")
    stop_all(tab.server, ids)  # before their first weights: nothing left to analyse in the background
    for slot in "ab":
        expect(second.locator(f"#panel-{slot} .run")).to_have_attribute("data-status", "stopped")
    assert tab.run_ids() == ids
    assert tab.errors == [] and other.errors == []
    other_context.close()


def test_runs_started_elsewhere_show_live_and_a_reload_restores_the_curves(tab):
    page = tab.open()
    ids = tab.server.start([LONG, {**LONG, "channels": "4"}])  # as from a second tab
    try:
        for slot, run_id in zip("ab", ids, strict=True):  # adopted once their first events arrive
            expect(page.locator(f"#panel-{slot} .run")).to_have_attribute("data-run-id", run_id, timeout=TIMEOUT)
        tab.wait_points(4)
        expect(panel(page, "b").get_by_label("channels", exact=True)).to_have_value("4")
        before = {(c, s): tab.points(c, s) for c in ("Loss", "Accuracy") for s in "ab"}
        page.reload()
        page.wait_for_selector("body[data-ready]")
        tab.wait_points(min(before.values()))
        after = {(c, s): tab.points(c, s) for c in ("Loss", "Accuracy") for s in "ab"}
        assert all(after[key] >= before[key] for key in before), (before, after)
        assert tab.run_ids() == ids
        expect(page.locator("#panel-a .run")).to_have_attribute("data-status", "running")
        expect(page.locator("#panel-a .progress-text")).to_contain_text(re.compile(r"\d+:\d\d left"))

        # a crashed worker: its panel says why, in full, next to its progress; the other goes on
        os.kill(worker_pid(ids[0]), signal.SIGKILL)
        message = page.locator("#panel-a .run-message")
        expect(message).to_contain_text("Run failed: The training process was killed by signal 9", timeout=TIMEOUT)
        expect(message).to_be_visible()
        assert message.evaluate("m => m.scrollWidth <= m.clientWidth && m.scrollHeight <= m.clientHeight + 1")
        expect(page.locator("#panel-a .run")).to_have_attribute("data-status", "failed")
        assert page.locator("#panel-b .run").get_attribute("data-status") == "running"
        assert page.get_by_role("link", name="Analyse A vs B").is_hidden()
    finally:
        stop_all(tab.server, ids)


def test_a_stroke_gives_both_probability_bars(tab):
    ids = tab.server.start([{**QUICK, "channels": "8-8"}, {**QUICK, "channels": "4-8"}], mode="sequential")
    runs = [tab.server.wait(run_id) for run_id in ids]
    assert [run["status"] for run in runs] == ["finished", "finished"]
    page = tab.open()
    assert tab.run_ids() == ids
    expect(page.get_by_label("mode", exact=True)).to_have_value("sequential")  # as the shown runs were started
    expect(panel(page, "b").get_by_label("channels", exact=True)).to_have_value("4-8")
    for slot, run in zip("ab", runs, strict=True):  # an ended run: its whole run's rate, not the last window's
        rate = round(run["info"]["samples_seen"] / run["info"]["train_seconds"])
        expect(page.locator(f"#panel-{slot} .progress-text")).to_contain_text(f"{rate:,} samples/s on average")
    pad = page.get_by_label("Draw a digit")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.15
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 21):  # a vertical stroke: a "1"
        page.mouse.move(x + step * 0.5, y + step * box["height"] * 0.035)
    for slot in "ab":  # answers come while the button is still down
        expect(page.locator(f"#probs-{slot}")).to_have_attribute("data-label", re.compile(r"^\d$"))
    page.mouse.up()
    for slot in "ab":
        widths = page.locator(f"#probs-{slot} .bar i").evaluate_all("bars => bars.map(b => parseFloat(b.style.width))")
        assert len(widths) == 10 and abs(sum(widths) - 100) < 1, widths  # ten bars, one distribution
    expect(page.locator("#verdict")).to_contain_text(re.compile(r"Both read|disagree"))
    # the grid of test images got both models' answers after their epoch
    for slot in "AB":
        expect(page.locator("#grid")).to_have_attribute(f"data-right-{slot.lower()}", re.compile(r"\d+"))
    # both ended and both analyses stored: a link to compare them, A first
    link = page.get_by_role("link", name="Analyse A vs B")
    expect(link).to_have_attribute("href", f"/analysis?a={ids[0]}&b={ids[1]}", timeout=TIMEOUT)
    expect(link).to_be_visible()
    assert tab.errors == []


def mnist_digits(data_dir, count):
    raw = (data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte").read_bytes()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:count].astype(np.float32) / 255


# Draws a 28x28 digit onto the page's own pad, scaled up and placed as a user might draw it,
# then runs the page's preprocessing on that canvas.
DRAW_BACK = """async ([image, scale, left, top]) => {
    const small = document.createElement('canvas');
    small.width = small.height = 28;
    const sctx = small.getContext('2d');
    const pixels = sctx.createImageData(28, 28);
    image.flat().forEach((v, i) => {
        pixels.data.fill(Math.round(v * 255), i * 4, i * 4 + 3);
        pixels.data[i * 4 + 3] = 255;
    });
    sctx.putImageData(pixels, 0, 0);
    const pad = document.querySelector('canvas[aria-label="Draw a digit"]');
    const ctx = pad.getContext('2d');
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(small, left, top, 28 * scale, 28 * scale);
    const { canvasToMnist } = await import('/static/js/canvas.js');
    return canvasToMnist(pad);
}"""


@pytest.mark.parametrize("scale, left, top", [(10, 0, 0), (7, 60, 20), (5, 10, 120)])
def test_a_drawn_back_mnist_digit_comes_out_close_to_the_original(tab, data_dir, scale, left, top):
    page = tab.open()
    differences, correlations = [], []
    for i, digit in enumerate(mnist_digits(data_dir, 20)):
        got = np.array(page.evaluate(DRAW_BACK, [digit.tolist(), scale, left, top]), dtype=np.float32)
        assert got.shape == (28, 28) and 0 <= got.min() and got.max() <= 1
        differences.append(np.abs(got - digit).mean())
        correlations.append(np.corrcoef(got.ravel(), digit.ravel())[0, 1])
        # moved by one pixel, a digit correlates with itself at about 0.6; redrawn it should be far closer
        assert correlations[-1] > 0.8, f"digit {i}: correlation {correlations[-1]:.3f}"
    assert np.mean(correlations) > 0.92, correlations
    assert np.mean(differences) < 0.045, differences
