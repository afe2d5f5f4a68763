"""Shared fixtures: the real data folder, and a real server on 127.0.0.1 in its own process."""

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CNN_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
# One cache of decoded datasets for every server of the session (each has its own runs folder): CIFAR-10's
# 60,000 PNGs are decoded once, not once per server. Removed when the session ends.
if "CNN_CACHE_DIR" not in os.environ:
    os.environ["CNN_CACHE_DIR"] = tempfile.mkdtemp(prefix="cnn-test-cache-")
    atexit.register(shutil.rmtree, os.environ["CNN_CACHE_DIR"], True)
# Servers keep no warm workers unless a test asks (tests/test_warm.py): each imports torch (~2 s of CPU), and
# a warm worker's command line does not name its run (test_server.py finds workers by it).
os.environ["CNN_WARM_WORKERS"] = "0"
CHROMIUM = "/usr/bin/chromium"  # Debian's package; never a downloaded browser
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
QUICK = {"train_samples": 1024, "epochs": 1, "batch_size": 64}  # a real run of a few seconds


@pytest.fixture(scope="session")
def data_dir():
    if not (DATA_DIR / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.fail(f"MNIST not found under {DATA_DIR}; set CNN_DATA_DIR to the folder holding MNIST/raw")
    return DATA_DIR


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """A thin requests wrapper around one running server."""

    def __init__(self, url, process, runs_dir):
        self.url, self.process, self.runs_dir = url, process, runs_dir

    def request(self, method, path, **kw):
        return requests.request(method, self.url + path, timeout=30, **kw)

    def get(self, path, **kw):
        return self.request("get", path, **kw)

    def post(self, path, **kw):
        return self.request("post", path, **kw)

    def start(self, models, mode="parallel"):
        answer = self.post("/api/runs", json={"mode": mode, "models": models})
        assert answer.status_code == 202, answer.text
        return [r["id"] for r in answer.json()["runs"]]

    def wait(self, run_id, statuses=("finished", "stopped", "failed"), timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            run = self.get(f"/api/runs/{run_id}").json()
            if run["status"] in statuses:
                return run
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s")


def start_server(data_dir, runs_dir, log_path, args=()):
    port = free_port()
    log = open(log_path, "wb")
    cmd = [sys.executable, "server.py", "--port", str(port), "--data-dir", str(data_dir), "--runs-dir", str(runs_dir)]
    # a lone run does not time a split over the cores (cnn/split.py) unless a test asks: tests/test_parallel.py
    cmd += list(args) if "--data-parallel" in args else [*args, "--data-parallel", "off"]
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    api = Api(f"http://127.0.0.1:{port}", process, runs_dir)
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {Path(log_path).read_text()[-2000:]}")
        try:
            if api.get("/api/runs").status_code == 200:
                return api
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError("server did not answer within 60 s")


def stop_server(api):
    api.process.terminate()
    try:
        api.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        api.process.kill()


def server_in(data_dir, folder, args=()):
    """A real server whose runs folder and log lie in `folder` (server.py's `args` added), for a fixture to
    yield from."""
    api = start_server(data_dir, folder / "runs", folder / "server.log", args)
    try:
        yield api
    finally:
        stop_server(api)


@pytest.fixture(scope="session")
def server(data_dir, tmp_path_factory):
    """One real server for the session; tests use the run ids they create."""
    yield from server_in(data_dir, tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found; install Debian's chromium package (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
