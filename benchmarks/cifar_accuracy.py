"""CIFAR-10 test accuracy through the engine: the lab recipe >= 75% in 10 epochs, >= 78.07% in 15 with one-cycle.

Real runs (Trainer.run with plugins.standard, all 50,000 training images, device cpu): the lab network
with its recipe (Adam 1e-3, batch 128, random crop 4 + horizontal flip), constant rate for 10 epochs,
then a one-cycle schedule over 15 epochs (the lab itself needed 25 epochs for 78.07%); ResNet18 on the
same recipe, for as many epochs as the machine allows. The test accuracy is the engine's own full
test-set evaluation after each epoch; a target is judged on the final epoch's, the model a user gets
(no validation share, so no epoch is chosen), and the first epoch that passes is reported too.
"""

import json
import time

from benchmarks.common import CACHE_DIR, DATA_DIR, command, loadavg, parser, verdict, write_section
from cnn.config import PRESETS, RunConfig
from cnn.plugins import standard
from cnn.train import Trainer

# name -> (network, schedule, epochs, target test accuracy or None, learning rate: the peak under a schedule)
RUNS = {
    "lab": ("lab", "none", 10, 0.75, 1e-3),
    "lab_onecycle": ("lab", "onecycle", 15, 0.7807, 1e-3),
    "lab_cosine": ("lab", "cosine", 15, 0.7807, 1e-3),
    # one-cycle's usual use: a peak a few times the constant rate, reached after 30% of the steps
    "lab_onecycle_3e-3": ("lab", "onecycle", 15, 0.7807, 3e-3),
    "resnet18": ("resnet18", "none", 10, None, 1e-3),
}


def config(name, epochs=None, precision="auto", quick=False):
    network, schedule, planned, _, lr = RUNS[name]
    return RunConfig(
        dataset="cifar10",
        **PRESETS[network]["values"],
        optimizer="adam",
        lr=lr,
        batch_size=128,
        augment={"crop": 4, "flip": True},
        schedule=schedule,
        epochs=1 if quick else epochs or planned,
        train_samples=2000 if quick else None,
        precision=precision,
    )


def one_run(name, cfg, log):
    """-> {name, config, epochs (epoch events), info (run_started + run_finished facts, wall, load)}."""
    epochs, info = [], {}

    def emit(event, payload):
        if event == "epoch":
            epochs.append(payload)
            print(
                f"{name} epoch {payload['epoch']}/{cfg.epochs}: test_acc={payload['test_acc']:.4f} "
                f"train_acc={payload['train_acc']:.4f} lr={payload['lr']:.2e} {payload['seconds']:.0f} s",
                flush=True,
            )
        elif event in ("run_started", "run_finished"):
            info.update(payload)

    info["load_start"], start = loadavg(), time.perf_counter()
    Trainer(cfg, str(DATA_DIR), "cpu", standard(emit), cache_dir=CACHE_DIR).run()
    info["wall"], info["load_end"] = time.perf_counter() - start, loadavg()
    record = {"name": name, "command": command(), "config": cfg.to_dict(), "epochs": epochs, "info": info}
    if log:
        with open(log, "a") as f:  # each finished run is kept, whatever happens to the next
            f.write(json.dumps(record) + "\n")
    return record


def latest(log):
    """-> {name: the last finished run of that name in the log}."""
    found = {}
    with open(log) as f:
        for line in f:
            record = json.loads(line)
            found[record["name"]] = record
    return found


def report(record):
    name, cfg, epochs, info = record["name"], record["config"], record["epochs"], record["info"]
    target = RUNS[name][3]
    final = epochs[-1]["test_acc"]
    wall = f"wall time {info['wall'] / 60:.1f} min, " if "wall" in info else ""
    lines = [
        f"### {name}: {PRESETS[RUNS[name][0]]['label']}, schedule {cfg['schedule']}, lr {cfg['lr']:g}, "
        f"{cfg['epochs']} epochs",
        "",
        f"Precision {info.get('precision')}, {info.get('threads')} torch threads, {info.get('train_samples')} "
        f"training images; {wall}training {info.get('train_seconds', 0) / 60:.1f} min; "
        f"load average (1 min) {info['load_start']:.1f} at its start, {info['load_end']:.1f} at its end."
        + (f" Run by `{record['command']}`." if "command" in record else ""),
        "",
        "| epoch | lr (last step) | train_loss | train_acc | test_loss | test_acc | train s |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {e['epoch']} | {e['lr']:.2e} | {e['train_loss']:.4f} | {e['train_acc']:.4f} | {e['test_loss']:.4f} | "
            f"**{e['test_acc']:.4f}** | {e['seconds']:.0f} |"
            for e in epochs
        ),
        "",
    ]
    if target is not None:
        first = next((e["epoch"] for e in epochs if e["test_acc"] >= target), None)
        passed = f"first at epoch {first}" if first else "never"
        lines += [
            f"Target: >= {target:.2%} test accuracy within {RUNS[name][2]} epochs: "
            f"**{verdict(final >= target and cfg['epochs'] <= RUNS[name][2])}** (final {final:.2%}; passed {passed}).",
            "",
        ]
    else:
        best = max(epochs, key=lambda e: e["test_acc"])
        lines += [f"Final {final:.2%} (the highest, {best['test_acc']:.2%}, at epoch {best['epoch']}).", ""]
    return lines


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", choices=list(RUNS), default=["lab", "lab_onecycle"])
    p.add_argument("--resnet-epochs", type=int, help="ResNet18's budget where its 10 epochs would take too long")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument(
        "--log",
        default="/tmp/cifar_accuracy.jsonl",
        help="finished runs, one JSON line each; the section reports the last run of each name in it",
    )
    p.add_argument("--report", action="store_true", help="train nothing: write the section from the run log")
    args = p.parse_args()
    log = None if args.quick else args.log
    records = {}
    for name in [] if args.report else args.runs:
        epochs = args.resnet_epochs if name == "resnet18" else None
        cfg = config(name, epochs, args.precision, args.quick)
        records[name] = one_run(name, cfg, log)
    if log:  # runs of earlier invocations (a longer ResNet18, another schedule) stay in the section
        records = latest(log) | records
    lines = [line for name in RUNS if name in records for line in report(records[name])]
    write_section("cifar_accuracy", lines, args)


if __name__ == "__main__":
    main()
