"""Bad input anywhere gets a 4xx sentence naming the field; the server keeps serving."""

import time

import pytest
import socketio

ROW = [0.0] * 28
IMAGE = [ROW] * 28
GOOD = {"train_samples": 64, "epochs": 1}

CASES = [
    # (method, path, JSON body or raw text (sent as is), status, words the message must hold)
    ("post", "/api/runs", "not json", 400, "body"),
    ("post", "/api/runs", [1, 2], 400, "body"),
    ("post", "/api/runs", {}, 400, "models"),
    ("post", "/api/runs", {"models": []}, 400, "models"),
    ("post", "/api/runs", {"models": [{}, {}, {}]}, 400, "one or two"),
    ("post", "/api/runs", {"models": [GOOD], "mode": "both"}, 400, "mode"),
    ("post", "/api/runs", {"models": [GOOD], "colour": "red"}, 400, "colour"),
    ("post", "/api/runs", {"models": ["16-32-64"]}, 400, "models[0].config"),
    ("post", "/api/runs", {"models": [{"channels": "16-x-64"}]}, 400, "models[0].channels"),
    ("post", "/api/runs", {"models": [{"channels": []}]}, 400, "1 to 6 layers"),
    ("post", "/api/runs", {"models": [{"channels": [8] * 7}]}, 400, "channels"),
    ("post", "/api/runs", {"models": [{"channels": [300]}]}, 400, "1 to 256"),
    ("post", "/api/runs", {"models": [GOOD, {"kernel_size": 4}]}, 400, "models[1].kernel_size"),
    ("post", "/api/runs", {"models": [{"optimizer": "lbfgs"}]}, 400, "adam, sgd, rmsprop"),
    ("post", "/api/runs", {"models": [{"lr": 0}]}, 400, "lr"),
    ("post", "/api/runs", {"models": [{"lr": "fast"}]}, 400, "lr"),
    ("post", "/api/runs", {"models": [{"batch_size": 0}]}, 400, "batch_size"),
    ("post", "/api/runs", {"models": [{"batch_size": 5000}]}, 400, "1 to 4096"),
    ("post", "/api/runs", {"models": [{"epochs": 51}]}, 400, "epochs"),
    ("post", "/api/runs", {"models": [{"epochs": True}]}, 400, "epochs"),
    ("post", "/api/runs", {"models": [{"dataset": "svhn"}]}, 400, "mnist, fashion_mnist, cifar10 or folder:<name>"),
    ("post", "/api/runs", {"models": [{"precision": "fp16"}]}, 400, "precision"),
    ("post", "/api/runs", {"models": [{"train_samples": 60001}]}, 400, "train_samples"),
    ("post", "/api/runs", {"models": [{"seed": -1}]}, 400, "seed"),
    ("post", "/api/runs", {"models": [{"path": "/etc/passwd"}]}, 400, "not a config field"),
    ("post", "/api/runs", '{"models": [{"batch_size": 1e400}]}', 400, "batch_size"),
    ("post", "/api/runs", {"models": [{"seed": "inf"}]}, 400, "seed"),
    ("post", "/api/runs", {"models": [{"train_samples": "1e400"}]}, 400, "train_samples"),
    ("post", "/api/runs", '{"models": [{"channels": [1e999]}]}', 400, "channels"),
    ("post", "/api/runs", {"models": [{"channels": "-16"}]}, 400, "channels"),
    ("post", "/api/runs", {"models": [{"epochs": "0x10"}]}, 400, "epochs"),
    ("get", "/api/runs/nope", None, 404, "no run"),
    ("get", "/api/runs/..%2f..%2fetc", None, 404, ""),
    ("post", "/api/runs/abcdefabcdef/stop", None, 404, "no run"),
    ("get", "/api/nothing-here", None, 404, "No such address"),
    ("delete", "/api/runs", None, 405, "not allowed"),
    ("post", "/api/predict", {"runs": ["abcdefabcdef"]}, 400, "image"),
    ("post", "/api/predict", {"image": [ROW] * 27 + [ROW[:27]], "runs": ["abcdefabcdef"]}, 400, "rows of numbers"),
    ("post", "/api/predict", {"image": [[2.0] * 28] * 28, "runs": ["abcdefabcdef"]}, 400, "from 0 to 1"),
    ("post", "/api/predict", {"image": [["x"] * 28] * 28, "runs": ["abcdefabcdef"]}, 400, "image"),
    ("post", "/api/predict", {"image": IMAGE}, 400, "runs"),
    ("post", "/api/predict", {"image": IMAGE, "runs": "abc"}, 400, "runs"),
    ("post", "/api/predict", {"image": IMAGE, "runs": ["abcdefabcdef"]}, 404, "no run"),
    ("post", "/api/predict", {"image": IMAGE, "runs": [{"$ne": 1}]}, 404, "no run"),
    ("post", "/api/models/check", {"config": {"lr": 5}}, 400, "lr"),
    ("get", "/api/samples?count=1000", None, 400, "count"),
    ("get", "/api/samples?dataset=../../etc", None, 400, "dataset"),
    ("get", "/api/samples?count=%C2%B2", None, 400, "count"),
    ("get", "/api/runs/abcdefabcdef/confusion?true=%C2%B2&pred=1", None, 404, "no run"),
    ("get", "/api/compare?b=abcdefabcdef", None, 400, "a: must name a run id"),
]


@pytest.mark.parametrize("method, path, body, status, words", CASES, ids=[f"{c[0]} {c[1]} {c[2]}"[:70] for c in CASES])
def test_bad_input_gets_a_sentence_not_a_crash(server, method, path, body, status, words):
    if isinstance(body, str):
        answer = server.post(path, data=body, headers={"Content-Type": "application/json"})
    else:
        answer = server.request(method, path, **({} if body is None else {"json": body}))
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]
    assert words in message and "Traceback" not in message
    assert server.get("/api/runs").status_code == 200


def test_bad_socket_events_get_an_answer(server):
    client = socketio.Client()
    answers = []
    client.on("request_failed", answers.append)
    client.connect(server.url, wait_timeout=10)
    try:
        for data in (None, "abc", {"run_id": "../../etc"}, {"run_id": 5}):
            client.emit("stop_run", data)
        deadline = time.time() + 30
        while len(answers) < 4 and time.time() < deadline:
            client.sleep(0.1)
        assert len(answers) == 4 and all("run_id" in a["error"] for a in answers)
    finally:
        client.disconnect()
    assert server.get("/api/runs").status_code == 200


def test_a_good_request_after_bad_ones_still_trains(server):
    (run_id,) = server.start([GOOD])
    assert server.wait(run_id)["status"] == "finished"


def test_a_foreign_host_name_is_refused(server):
    """A page elsewhere that points its own DNS name at 127.0.0.1 (DNS rebinding) gets nothing."""
    answer = server.get("/api/runs", headers={"Host": "evil.example:5000"})
    assert answer.status_code == 403 and "127.0.0.1" in answer.json()["error"]
    assert server.get("/api/runs", headers={"Host": "localhost"}).status_code == 200
    client = socketio.Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        evil = {"Host": "evil.example:5000", "Origin": "http://evil.example:5000"}  # the same origin, rebound
        client.connect(server.url, headers=evil, transports=["polling"], wait_timeout=5)
