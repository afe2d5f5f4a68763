"""The analysis page (/analysis?a=&b=) in headless Chromium against a real server and two real runs.

Waits for what the page publishes (body[data-ready], cell states), never for "network idle".
"""

import re
import time
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

# Fashion-MNIST, so the pages must name classes as clothing; MNIST's names are the digits themselves
FASHION = {"train_samples": 2000, "epochs": 1, "dataset": "fashion_mnist"}
PAIR = [FASHION, {**FASHION, "channels": "4"}]
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
TIMEOUT = 30_000  # ms, for the page once both analyses are stored


@pytest.fixture(scope="module")
def pair(server):
    """Two short real runs whose analyses are stored."""
    ids = server.start(PAIR)
    deadline = time.time() + 180
    for run_id in ids:
        while (run := server.get(f"/api/runs/{run_id}").json())["analysis"] != "ready":
            assert run["status"] != "failed" and run["analysis"] != "failed", run
            assert time.time() < deadline, f"run {run_id}: {run['status']}, analysis {run['analysis']}"
            time.sleep(0.3)
    return ids


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("requestfailed", lambda r: page.problems.append(f"{r.url} {r.failure}"))
    page.on("request", lambda r: urlparse(r.url).hostname != "127.0.0.1" and page.problems.append(r.url))
    yield page
    context.close()


def test_analysis_of_two_runs(page, server, pair):
    a, b = pair
    page.goto(f"{server.url}/analysis?a={a}&b={b}")
    page.wait_for_selector("body[data-ready=full]", timeout=TIMEOUT)

    for name in ("Confusion A", "Confusion B", "Confusion A−B"):
        region = page.get_by_role("region", name=name, exact=True)
        expect(region).to_be_visible()
        expect(region.locator(".cm-cell")).to_have_count(100)
        expect(region.locator(".axis.true")).to_have_text(["T-shirt", *CLASSES[1:9], "Boot"])  # short names
        expect(region.locator(".axis.true").last).to_have_attribute("title", "true Ankle boot")
    expect(page.locator("#run-a")).to_have_value(a)
    expect(page.locator("#run-b")).to_have_value(b)

    gallery = page.get_by_role("region", name="Only one got it right")
    expect(gallery.locator("canvas").first).to_be_visible()
    expect(gallery.locator(".truth").first).to_have_text(re.compile(f"^true ({'|'.join(map(re.escape, CLASSES))})$"))
    expect(page.locator("#scores-table tbody th")).to_have_text(CLASSES)

    facts = page.get_by_role("region", name="Model facts")
    expect(facts).to_contain_text("latency, batch 1 (best of 50)")
    expect(facts).to_contain_text("throughput, batch 256 (best of 10)")
    for run_id in pair:
        params = server.get(f"/api/runs/{run_id}/analysis").json()["params"]
        expect(facts).to_contain_text(f"{params:,}")
    expect(page.get_by_role("region", name="Verdict")).to_contain_text("more accurate")
    expect(page.locator("#grad-a")).to_have_attribute("data-layers", "4")  # conv1-3 and fc
    expect(page.locator("#maps-a .layer")).to_have_count(3)
    expect(page.locator("#maps-b .layer canvas")).to_have_count(4)  # B: one layer of 4 channels

    page.get_by_role("region", name="Confusion A", exact=True).locator('.cm-cell[data-true="1"][data-pred="1"]').click()
    cell = page.get_by_role("region", name="Cell images")
    expect(cell).to_have_attribute("data-state", "shown")
    expect(page.locator("#cell-title")).to_have_text("True Trouser, predicted Trouser (right)")
    expect(cell.locator("canvas").first).to_be_visible()
    page.locator("#cell-close").click()
    expect(page.locator("#cell")).to_be_hidden()
    expect(page.locator(".cm-cell[aria-pressed]")).to_have_count(0)

    # a test image picked beside the pad becomes both models' input
    sample = page.locator("#maps-samples .sample").nth(2)
    sample.click()
    expect(sample).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#maps-samples .sample[aria-pressed=true]")).to_have_count(1)
    source = re.compile(rf"^What both models receive: test image 2 \(({'|'.join(map(re.escape, CLASSES))})\)$")
    expect(page.locator("#maps-source")).to_have_text(source)
    expect(page.locator(".features")).to_have_attribute("data-state", "shown")
    expect(page.locator("#maps-b .layer canvas")).to_have_count(4)
    assert page.problems == []


def test_unknown_run_says_so(page, server, pair):
    page.goto(f"{server.url}/analysis?a=nosuchrun&b={pair[1]}")
    page.wait_for_selector("body[data-ready]", timeout=TIMEOUT)
    sentence = "Run A (nosuchrun) does not exist; pick another run above."
    said = page.get_by_role("region", name="Confusion A", exact=True).locator(".message")
    expect(said).to_have_text(sentence)
    expect(said).to_have_attribute("title", re.compile("no run with id 'nosuchrun'"))  # the server's own words
    expect(page.locator("#verdict-text")).to_have_text(f"No verdict yet. {sentence}")
    expect(page.get_by_role("region", name="Confusion B").locator(".cm-cell")).to_have_count(100)
    page.problems[:] = [p for p in page.problems if "404" not in p]  # the 404 answers themselves
    assert page.problems == []


def test_main_page_names_clothing_for_fashion_runs(page, server, pair):
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready]")
    assert [page.get_attribute(f"#panel-{s} .run", "data-run-id") for s in "ab"] == pair  # the newest pair
    note = page.get_by_role("note")
    expect(note).to_contain_text("Both models were trained on clothing")
    expect(page.get_by_label("Draw a digit")).to_be_visible()
    for slot in "ab":
        expect(page.locator(f"#probs-{slot} .prob-row .digit")).to_have_text(CLASSES)
    # the grid shows Fashion-MNIST's own test images, named, with each model's answer as a name
    grid = page.locator("#grid")
    expect(grid).to_have_attribute("data-right-b", re.compile(r"\d+"), timeout=TIMEOUT)
    one_of = re.compile(f"^({'|'.join(map(re.escape, CLASSES))})$")
    for truth in grid.locator(".truth").all():
        expect(truth).to_have_text(one_of)
    expect(grid.locator(".guess[data-slot=a]").first).to_have_text(re.compile(r"^A: [A-Z]"))
    # a stroke: the verdict names a piece of clothing
    pad = page.get_by_label("Draw a digit")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.8, steps=10)
    page.mouse.up()
    names = "|".join(map(re.escape, CLASSES))
    expect(page.locator("#verdict")).to_have_text(re.compile(f"(Both read|A reads) ({names})"))
    assert page.problems == []
