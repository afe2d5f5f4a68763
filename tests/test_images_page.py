"""The main page on colour images, in headless Chromium against a real server of its own: a pair trained
on a CIFAR-10 subset shows RGB test images named by class, classifies an uploaded PNG by class name,
takes one dropped on its zone too, refuses a file that is not an image with the server's sentence, and the
dataset view lists CIFAR-10.

Waits for what the page publishes (data attributes, texts), never for "network idle".
"""

import base64
import re
from urllib.parse import urlparse

import pytest
from conftest import server_in
from playwright.sync_api import expect

CIFAR = {"dataset": "cifar10", "train_samples": 512, "epochs": 1, "batch_size": 64}
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
ONE_OF = re.compile(f"^({'|'.join(CLASSES)})$")
TIMEOUT = 60_000  # ms; the runs have ended before the page opens


@pytest.fixture(scope="module")
def cifar(data_dir, tmp_path_factory):
    """A server of its own whose newest pair is the lab network (A) and a shorthand one (B) on CIFAR-10."""
    for api in server_in(data_dir, tmp_path_factory.mktemp("cifar")):
        lab = api.get("/api/schema").json()["presets"]["lab"]["values"]
        ids = api.start([{**CIFAR, **lab}, {**CIFAR, "channels": "8-16"}])
        runs = [api.wait(run_id, timeout=600) for run_id in ids]  # CIFAR-10 is decoded once, the first time
        assert [run["status"] for run in runs] == ["finished", "finished"], runs
        api.ids = ids
        yield api


@pytest.fixture
def page(browser, cifar):
    """A tab on the page, with what went wrong in it (console errors and their addresses) and the bodies of
    every POST /api/predict."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors, page.error_urls, page.predicts = [], [], []

    def console(message):
        if message.type == "error":
            page.errors.append(message.text)
            page.error_urls.append(message.location.get("url", ""))

    page.on("console", console)
    page.on("pageerror", lambda e: page.errors.append(str(e)))

    def request(r):
        if r.method == "POST" and urlparse(r.url).path == "/api/predict":
            page.predicts.append(r.post_data_json)

    page.on("request", request)
    page.goto(cifar.url + "/")
    page.wait_for_selector("body[data-ready]")
    assert [page.get_attribute(f"#panel-{s} .run", "data-run-id") for s in "ab"] == cifar.ids
    yield page
    context.close()


@pytest.fixture
def cat_png(data_dir, tmp_path):
    """A real CIFAR-10 test image, the file's own bytes."""
    source = sorted((data_dir / "CIFAR10" / "test" / "cat").glob("*.png"))[0]
    path = tmp_path / "cat.png"
    path.write_bytes(source.read_bytes())
    return path


def test_the_grid_shows_colour_test_images_named_by_class(page, cifar):
    grid = page.locator("#grid")
    expect(grid.locator(".cell")).to_have_count(16)
    expect(page.locator("#grid-title")).to_have_text("16 test images of cifar10")
    for truth in grid.locator(".truth").all():
        expect(truth).to_have_text(ONE_OF)
    for slot in "ab":  # both models answered, by class name
        expect(grid).to_have_attribute(f"data-right-{slot}", re.compile(r"^\d+$"), timeout=TIMEOUT)
        expect(grid.locator(f".guess[data-slot={slot}]").first).to_have_text(
            re.compile(f"^{slot.upper()}: ({'|'.join(CLASSES)})$")
        )
    # the thumbnails are the images themselves, 32x32 in colour: some pixel's red, green and blue differ
    colour = grid.locator(".cell canvas").first.evaluate("""c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let differ = 0;
        for (let i = 0; i < d.length; i += 4) differ += Math.abs(d[i] - d[i + 1]) + Math.abs(d[i + 1] - d[i + 2]) > 30;
        return [c.width, c.height, differ];
    }""")
    assert colour[:2] == [32, 32] and colour[2] > 10, colour
    grid_bodies = [body for body in page.predicts if "images" in body]
    assert sorted(body["runs"][0] for body in grid_bodies) == sorted(cifar.ids)  # one request per model
    assert all(len(body["images"]) == 16 and len(body["images"][0]) == 3 for body in grid_bodies)
    # neither model reads a 28x28 grey drawing: the pad is off and says why
    expect(page.get_by_label("Draw a digit")).to_be_hidden()
    expect(page.locator("#draw-note")).to_contain_text("Both models take 32×32 RGB images (cifar10)")
    # a click on a test image shows both models' probabilities by class name, from the grid's answers
    page.get_by_role("button", name=re.compile(r"^test image 1, ")).click()
    expect(page.locator("#upload-source")).to_have_text(re.compile(r"^test image 1 of cifar10: [a-z]+$"))
    for slot in "ab":
        expect(page.locator(f"#upload-probs-{slot} .prob-row .digit")).to_have_count(5)
        expect(page.locator(f"#upload-probs-{slot}")).to_have_attribute("data-name", ONE_OF)
    assert len(page.predicts) == len(grid_bodies) == 2  # nothing more asked for it
    assert page.errors == []


def test_an_uploaded_png_gets_both_models_probabilities_by_class_name(page, cifar, cat_png):
    page.locator("#upload-file").set_input_files(cat_png)
    for slot in "ab":
        box = page.locator(f"#upload-probs-{slot}")
        expect(box).to_have_attribute("data-name", ONE_OF, timeout=TIMEOUT)
        names = box.locator(".prob-row .digit")
        expect(names).to_have_count(5)  # the five most likely, best first
        assert all(ONE_OF.match(n) for n in names.all_inner_texts())
        shares = [float(v.rstrip("%")) for v in box.locator(".prob-row .value").all_inner_texts()]
        assert shares == sorted(shares, reverse=True) and sum(shares) <= 100.5, shares
        assert box.locator(".prob-row.best .digit").inner_text() == box.get_attribute("data-name")
    expect(page.locator("#upload-verdict")).to_have_text(re.compile(r"^(Both read [a-z]+|They disagree: .+)\.$"))
    expect(page.locator("#upload-source")).to_have_text("cat.png, resized by the server to 32×32 RGB")
    files = [body for body in page.predicts if "file" in body]
    assert len(files) == 1 and files[0]["runs"] == cifar.ids  # one request, both models
    assert base64.b64decode(files[0]["file"].split(",", 1)[1]) == cat_png.read_bytes()  # the file's own bytes
    expect(page.locator("#upload-message")).to_have_text("")
    assert page.errors == []


# Drops a file on the drop zone as a browser does: a drop event whose DataTransfer holds the file.
DROP = """([name, bytes]) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([new Uint8Array(bytes)], name, {type: 'image/png'}));
    const drop = new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true});
    document.querySelector('#drop').dispatchEvent(drop);
}"""


def test_a_png_dropped_on_the_zone_is_classified(page, cifar, cat_png):
    page.evaluate(DROP, ["dropped.png", list(cat_png.read_bytes())])
    for slot in "ab":
        expect(page.locator(f"#upload-probs-{slot}")).to_have_attribute("data-name", ONE_OF, timeout=TIMEOUT)
    expect(page.locator("#upload-source")).to_have_text(re.compile(r"^dropped\.png, resized by the server to "))
    assert page.errors == []


def test_a_file_that_is_not_an_image_gets_the_servers_sentence(page, cifar, cat_png, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture\n")
    answer = cifar.post("/api/predict", json={"file": base64.b64encode(notes.read_bytes()).decode(), "runs": cifar.ids})
    assert answer.status_code == 400 and answer.json()["field"] == "file"
    rule = answer.json()["error"].removeprefix("file: ")
    page.locator("#upload-file").set_input_files(notes)
    expect(page.locator("#upload-message")).to_have_text(f"notes.txt was refused: it {rule}")
    expect(page.locator("#upload")).to_have_attribute("data-state", "refused")
    expect(page.locator("#upload-probs-a .prob-row")).to_have_count(0)
    # the server goes on: a real image right after is classified
    page.locator("#upload-file").set_input_files(cat_png)
    expect(page.locator("#upload-probs-b")).to_have_attribute("data-name", ONE_OF, timeout=TIMEOUT)
    expect(page.locator("#upload-message")).to_have_text("")
    # the browser reports the refusal's 400 as a failed resource; nothing else may go wrong
    assert all(url.endswith("/api/predict") for url in page.error_urls), page.errors


def test_the_dataset_view_lists_cifar10_with_its_classes_and_training_images(page, cifar):
    row = page.locator("#datasets-table tr[data-name=cifar10]")
    expect(row.locator("td")).to_have_text(["32×32 RGB", "50,000", "10,000", "10", "5,000 each", "yes"])
    row.get_by_role("button", name="cifar10").click()
    expect(row.get_by_role("button", name="cifar10")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#dataset-title")).to_have_text("cifar10: 10 classes, 32×32 RGB")
    expect(page.locator("#dataset-classes li")).to_have_text([f"{name} (5,000)" for name in CLASSES])
    thumbs = page.locator("#train-samples .thumb")
    expect(thumbs).to_have_count(32)
    for caption in thumbs.locator("figcaption").all()[:8]:
        expect(caption).to_have_text(ONE_OF)
    # model A's augmentation as its panel was checked: the originals beside what a batch might see
    page.get_by_role("button", name="Preview augmentation of model A").click()
    expect(page.locator("#augment-preview .pair")).to_have_count(16)
    expect(page.locator("#augment-note")).to_contain_text("Model A trains on")
    assert page.errors == []
