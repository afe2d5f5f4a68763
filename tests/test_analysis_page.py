"""The analysis page (/analysis?a=&b=) in headless Chromium against a real server and two real runs.

Waits for what the page publishes (body[data-ready], cell states), never for "network idle".
"""

import re
import time
from urllib.parse import urlparse

import pytest
import torch
from conftest import server_in
from playwright.sync_api import expect
from scipy import stats
from torchvision.io import encode_png

from cnn.verdict import p_text

# Fashion-MNIST, so the pages must name classes as clothing; MNIST's names are the digits themselves
FASHION = {"train_samples": 2000, "epochs": 1, "dataset": "fashion_mnist"}
PAIR = [FASHION, {**FASHION, "channels": "4"}]
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TIMEOUT = 30_000  # ms, for the page once both analyses are stored


def analysed(server, ids, timeout=180):
    """Waits until every run's analysis is stored; -> ids."""
    deadline = time.time() + timeout
    for run_id in ids:
        while (run := server.get(f"/api/runs/{run_id}").json())["analysis"] != "ready":
            assert run["status"] != "failed" and run["analysis"] != "failed", run
            assert time.time() < deadline, f"run {run_id}: {run['status']}, analysis {run['analysis']}"
            time.sleep(0.3)
    return ids


@pytest.fixture(scope="module")
def pair(server):
    """Two short real runs whose analyses are stored."""
    return analysed(server, server.start(PAIR))


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
    # one seed each: McNemar's exact test on the paired predictions, with the server's p-value (scipy's)
    compare = server.get(f"/api/compare?a={a}&b={b}").json()
    only_a, only_b = compare["count_only_a"], compare["count_only_b"]
    assert compare["p_value"] == pytest.approx(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)
    verdict = page.locator("#verdict-text")
    expect(verdict).to_contain_text("Is trained model A better than trained model B on this test set? ")
    counts = rf"A gets {only_a} images? right that B misses and B gets {only_b} that A misses: "
    expect(verdict).to_contain_text(re.compile(counts))
    expect(verdict).to_contain_text(p_text(compare["p_value"]))
    expect(verdict).to_contain_text(compare["sentence"])
    significant = compare["p_value"] < 0.05
    said = "is better on this test set" if significant else "no evidence that either is better"
    expect(verdict).to_contain_text(said)
    expect(verdict).to_have_attribute("data-winner", ("a" if only_a > only_b else "b") if significant else "")
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


@pytest.fixture(scope="module")
def cifar_server(data_dir, tmp_path_factory):
    yield from server_in(data_dir, tmp_path_factory.mktemp("cifar-analysis"))


@pytest.fixture(scope="module")
def cifar_pair(cifar_server):
    """CIFAR-10: the lab network's layer stack (from the schema's presets) against a shorthand 8-16."""
    lab = cifar_server.get("/api/schema").json()["presets"]["lab"]["values"]
    common = {"dataset": "cifar10", "train_samples": 512, "epochs": 1, "batch_size": 64}
    return analysed(cifar_server, cifar_server.start([{**common, **lab}, {**common, "channels": "8-16"}]), 300)


COLOURS = """c => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let colour = false;
  for (let i = 0; i < d.length; i += 4) colour ||= d[i] !== d[i + 1] || d[i + 1] !== d[i + 2];
  return [c.width, c.height, colour];
}"""


def test_a_cifar10_pair_is_named_in_colour_with_maps_of_each_conv(page, cifar_server, cifar_pair):
    a, b = cifar_pair
    page.goto(f"{cifar_server.url}/analysis?a={a}&b={b}")
    page.wait_for_selector("body[data-ready=full]", timeout=TIMEOUT)
    expect(page.locator("#run-a option:checked")).to_contain_text("conv 32-64 · linear 256")
    for name in ("Confusion A", "Confusion A−B"):
        region = page.get_by_role("region", name=name, exact=True)
        expect(region.locator(".cm-cell")).to_have_count(100)
        expect(region.locator(".axis.true")).to_have_text(CIFAR10)
    expect(page.locator("#scores-table tbody th")).to_have_text(CIFAR10)

    gallery = page.get_by_role("region", name="Only one got it right")
    expect(gallery.locator(".truth").first).to_have_text(re.compile(f"^true ({'|'.join(CIFAR10)})$"))
    assert gallery.locator("canvas").first.evaluate(COLOURS) == [32, 32, True]  # RGB 32x32 test images

    # no pad for RGB input: the first test image is both models' input, painted in colour
    expect(page.get_by_label("Draw a digit")).to_be_hidden()
    source = re.compile(rf"^What both models receive: test image 0 \(({'|'.join(CIFAR10)})\)$")
    expect(page.locator("#maps-source")).to_have_text(source)
    assert page.locator("#maps-preview").evaluate(COLOURS) == [32, 32, True]
    layers = {
        "a": ["conv1 · 32 × 32 × 32", "conv2 · 64 × 16 × 16"],
        "b": ["conv1 · 8 × 32 × 32", "conv2 · 16 × 16 × 16"],
    }
    for slot, titles in layers.items():
        expect(page.locator(f"#maps-{slot} .layer h4 > span:first-child")).to_have_text(titles)
    # 64 channels: 32 at a time, the next page a click away
    conv2 = page.locator('#maps-a .layer[data-layer="conv2"]')
    expect(conv2.locator("canvas")).to_have_count(32)
    conv2.get_by_role("button", name="next channels").click()
    expect(conv2.locator(".page-label")).to_have_text("channels 33–64 of 64")
    expect(conv2.locator("canvas").first).to_have_attribute("title", re.compile(r"^conv2 channel 32: "))

    page.locator("#maps-samples .sample").nth(1).click()
    expect(page.locator("#maps-source")).to_have_text(re.compile(r"^What both models receive: test image 1 \("))
    expect(page.locator(".features")).to_have_attribute("data-state", "shown")
    expect(conv2.locator(".page-label")).to_have_text("channels 33–64 of 64")  # the page kept for the new image

    page.get_by_role("region", name="Confusion A", exact=True).locator('.cm-cell[data-true="0"][data-pred="0"]').click()
    expect(page.locator("#cell-title")).to_have_text("True airplane, predicted airplane (right)")
    expect(page.locator("#cell")).to_have_attribute("data-state", "shown")
    assert page.problems == []


def test_runs_on_different_data_sets_get_no_verdict(page, cifar_server, cifar_pair):
    (mnist,) = analysed(cifar_server, cifar_server.start([{"train_samples": 256, "epochs": 1, "batch_size": 64}]))
    page.goto(f"{cifar_server.url}/analysis?a={cifar_pair[0]}&b={mnist}")
    page.wait_for_selector("body[data-ready]", timeout=TIMEOUT)
    verdict = page.locator("#verdict-text")
    expect(verdict).to_have_text(
        "No verdict: A was trained on cifar10 and B on mnist, so their accuracies are on different test sets "
        "and cannot be compared."
    )
    expect(verdict).to_have_attribute("data-winner", "")
    page.problems[:] = [p for p in page.problems if "400" not in p]  # /api/compare's refusal, for the gallery
    assert page.problems == []


HUNDRED = [f"kind-{k:02d}" for k in range(100)]


@pytest.fixture(scope="module")
def hundred_server(tmp_path_factory):
    """A server on a data folder holding one dataset of 100 classes of small grey images (5 each: 1 tested)."""
    root = tmp_path_factory.mktemp("hundred")
    generator = torch.Generator().manual_seed(0)
    for k, name in enumerate(HUNDRED):
        folder = root / "data" / "folders" / "hundred" / "train" / name
        folder.mkdir(parents=True)
        for i in range(5):
            image = torch.randint(0, 60, (1, 28, 28), generator=generator, dtype=torch.uint8)
            image[0, k // 10 * 2 : k // 10 * 2 + 8, k % 10 * 2 : k % 10 * 2 + 8] = 255
            (folder / f"{i}.png").write_bytes(encode_png(image).numpy().tobytes())
    yield from server_in(root / "data", root)


def test_a_hundred_class_matrix_scrolls_with_names_on_hover(page, hundred_server):
    common = {"dataset": "folder:hundred", "epochs": 1, "batch_size": 32}
    a, b = analysed(hundred_server, hundred_server.start([{**common, "channels": "4"}, {**common, "channels": "8"}]))
    page.goto(f"{hundred_server.url}/analysis?a={a}&b={b}")
    page.wait_for_selector("body[data-ready=full]", timeout=TIMEOUT)
    expect(page.locator(".confusions")).to_have_attribute("data-size", "l")
    region = page.get_by_role("region", name="Confusion A", exact=True)
    expect(region.locator(".cm-cell")).to_have_count(10_000)
    axis = region.locator(".axis.true")
    expect(axis).to_have_count(100)
    expect(axis.last).to_have_attribute("title", "true kind-99")
    matrix = region.locator(".matrix")
    overflow, scrolls = matrix.evaluate("m => [getComputedStyle(m).overflowY, m.scrollHeight > m.clientHeight]")
    assert overflow == "auto" and scrolls  # a box of its own that scrolls, not a page 100 rows tall
    cell = region.locator('.cm-cell[data-true="99"][data-pred="99"]')
    assert cell.bounding_box()["width"] >= 11 and cell.text_content() == ""  # small squares, counts on hover
    expect(cell).to_have_attribute("title", re.compile(r"^true kind-99, predicted kind-99: \d+ images?"))
    cell.click()
    expect(page.locator("#cell-title")).to_have_text("True kind-99, predicted kind-99 (right)")
    expect(page.locator("#scores-table tbody tr")).to_have_count(100)
    expect(page.locator("#maps-a .layer")).to_have_count(1)
    assert page.problems == []
