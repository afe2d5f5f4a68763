"""Command line: python -m cnn train --config a.json [--config b.json] [--mode sequential].

Progress bars go to stderr, every event to stdout as one JSON line.
"""

import argparse
import json
import os
import sys
import tempfile
import threading

from tqdm import tqdm

from . import datasets, events, models, split
from .config import ConfigError, defaults_for, validate
from .runs import RunManager


def read_configs(paths, data_dir):
    configs = []
    for i, path in enumerate(paths):
        try:
            with open(path) as f:
                raw = json.load(f)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--config {path}: cannot read a JSON object ({exc})") from None
        try:
            cfg = validate(raw, defaults_for(i))
            info = datasets.describe(cfg.dataset, data_dir, cfg.image_size)
            models.describe(cfg, info.shape, len(info.classes))  # an impossible stack is refused before training
        except (ConfigError, datasets.DataError) as exc:
            raise SystemExit(f"--config {path}: {exc}") from None
        configs.append(cfg)
    return configs


def train(args):
    configs = read_configs(args.config, args.data_dir)
    bars, done = {}, threading.Event()
    out_lock = threading.Lock()

    def listener(name, payload):
        with out_lock:
            print(json.dumps({"event": name, **payload}), flush=True)
            run_id = payload.get("run_id")  # runs_created names a group, not one run
            if name == events.RUN_STARTED:
                label = manager.runs[run_id].config.label()
                total = payload["steps_per_epoch"] * payload["epochs"]
                bars[run_id] = tqdm(total=total, desc=label, unit="batch", file=sys.stderr, position=len(bars))
            elif name == events.BATCH and run_id in bars:
                bar = bars[run_id]
                bar.update((payload["epoch"] - 1) * payload["steps"] + payload["step"] - bar.n)
                bar.set_postfix(loss=f"{payload['loss']:.3f}", acc=f"{payload['acc']:.3f}")
            elif name == events.RUN_FAILED:
                print(f"run {run_id} failed: {payload['error']}", file=sys.stderr)
            if all(r.status in events.ENDED for r in manager.runs.values()):
                done.set()

    with tempfile.TemporaryDirectory(prefix="cnn-runs-") as scratch:
        runs_dir = args.runs_dir or scratch
        # a scratch runs folder must not hold the decoded datasets, or every invocation decodes them again
        cache = args.cache_dir or (None if args.runs_dir else datasets.default_cache_dir())
        manager = RunManager(
            args.data_dir,
            runs_dir,
            args.device,
            listener,
            analyse=False,
            cache_dir=cache,
            autotune=not args.no_autotune,
            data_parallel=args.data_parallel,
        )
        manager.runs.clear()  # only this invocation's runs count
        try:
            manager.start(configs, args.mode, args.repeats)
        except ConfigError as exc:
            raise SystemExit(f"--repeats: {exc}") from None
        interrupted = False
        try:
            done.wait()
        except KeyboardInterrupt:
            interrupted = True
            manager.stop_all()
        for bar in bars.values():
            bar.close()
    if interrupted:
        return 130  # as a shell reports a Ctrl-C
    return 1 if any(r.status == events.FAILED for r in manager.runs.values()) else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cnn", description="Train CNNs from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one or two models and stream their metrics as JSON lines")
    t.add_argument("--config", action="append", required=True, help="a JSON model config; give it once or twice")
    t.add_argument("--mode", choices=["parallel", "sequential"], default="parallel")
    t.add_argument("--no-autotune", action="store_true", help="plain form: no timing of the network's forms")
    split.add_flag(t)
    t.add_argument("--repeats", type=int, default=1, help="train each config with seeds s, s+1, ... (1 to 10)")
    t.add_argument("--data-dir", default=os.environ.get("CNN_DATA_DIR", "data"))
    t.add_argument("--runs-dir", default=None, help="keep run records and weights here (default: a temp folder)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    t.add_argument(
        "--cache-dir",
        default=os.environ.get("CNN_CACHE_DIR"),
        help="decoded datasets (default: <runs-dir>/cache, else ~/.cache/cnn-playground)",
    )
    args = parser.parse_args(argv)
    if len(args.config) > 2:
        parser.error("--config: give one or two model configs")
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
