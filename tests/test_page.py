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
from conftest import QUICK
from playwright.sync_api import expect

# short real runs of tiny models: long enough to stop or reload mid-run, quick to start
LONG = {"channels": "4-8", "train_samples": 2048, "epochs": 8, "batch_size": 32}
TIMEOUT = 90_000  # ms; a worker takes a few seconds to import torch and load MNIST


class Tab:
    """A page plus what it logged: console errors, failed, outside and API requests."""

    def __init__(self, page, server):
        self.page, self.server = page, server
        self.errors, self.failed, self.outside, self.requests = [], [], [], []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("request", self._request)

    def _request(self, request):
        if urlparse(request.url).hostname != "127.0.0.1":
            self.outside.append(request.url)
        if "/api/" in request.url:
            self.requests.append((request.method, urlparse(request.url).path))

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


def test_page_loads_without_errors_or_outside_requests(tab):
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
    a.get_by_label("kernel_size", exact=True).select_option("5")
    expect(a.locator(".params")).to_have_text(f"{8 * 26 + 2 * 8 * (8 * 25 + 1) + 10 * (8 * 49 + 1):,} parameters")


@pytest.mark.parametrize(
    "slot, field, value, message",
    [
        ("a", "lr", "2", "must be a number from 1e-05 to 1"),
        ("b", "channels", "8-x-8", "must be 1 to 6 layers of 1 to 256 channels, like 16-32-64"),
        ("b", "train_samples", "0", "must be a whole number from 1 to 60000"),
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
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.locator("#train-message")).to_contain_text(f"Model {slot.upper()} has an invalid value")
    expect(page.locator("#train-message")).to_contain_text("Nothing was sent")
    assert ("POST", "/api/runs") not in tab.requests


def test_both_invalid_panels_are_named_by_train(tab):
    page = tab.open()
    fill(page, "a", lr="2")
    fill(page, "b", epochs="0", seed="-1")
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.locator("#train-message")).to_have_text(
        "Models A and B have invalid values; fix the marked fields first. Nothing was sent."
    )
    assert ("POST", "/api/runs") not in tab.requests


def test_server_error_shows_next_to_its_field(tab):
    page = tab.open()
    answer = {"error": "models[1].lr: must be a number from 1e-05 to 1", "field": "models[1].lr"}
    page.route("**/api/runs", lambda route: route.fulfill(status=400, json=answer))
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.locator("#b-lr-message")).to_have_text("must be a number from 1e-05 to 1")
    refused = "The server refused model B's lr: must be a number from 1e-05 to 1"
    expect(page.locator("#train-message")).to_have_text(refused)


def test_train_draws_both_runs_on_both_charts_and_stop_ends_them(tab):
    page = tab.open()
    for slot, channels in (("a", "8-16"), ("b", "4-8")):
        group = panel(page, slot)
        group.get_by_label("channels", exact=True).fill(channels)
        group.get_by_label("train_samples", exact=True).fill("2048")
        group.get_by_label("epochs", exact=True).fill("8")
        group.get_by_label("batch_size", exact=True).fill("32")
    page.get_by_role("button", name="Train", exact=True).click()
    tab.wait_points(3)
    ids = tab.run_ids()
    assert all(ids) and ids[0] != ids[1]
    for run_id, channels in zip(ids, ([8, 16], [4, 8]), strict=True):
        assert tab.server.get(f"/api/runs/{run_id}").json()["config"]["channels"] == channels

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
