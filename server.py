"""Starts CNN Playground: python server.py [--host H] [--port P] [--data-dir D] [--device D] [--warm-workers N]."""

import warnings

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")  # the chosen stack; not news at every start
import eventlet  # noqa: E402

eventlet.monkey_patch()  # first, before anything imports socket or threading

import argparse  # noqa: E402
import atexit  # noqa: E402
import os  # noqa: E402

import torch  # noqa: E402

from cnn import data, split  # noqa: E402
from web import create_app  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="Train two CNNs side by side in your browser.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("CNN_DATA_DIR", "data"),
        help="where MNIST, Fashion-MNIST, CIFAR-10 and folders/<name> live or are downloaded to (env CNN_DATA_DIR)",
    )
    parser.add_argument("--runs-dir", default="runs", help="where run records and weights are kept")
    parser.add_argument(
        "--cache-dir",
        default=os.environ.get("CNN_CACHE_DIR"),
        help="where decoded datasets are cached (default <runs-dir>/cache; env CNN_CACHE_DIR)",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument(
        "--no-autotune", action="store_true", help="train every network in its plain form, without timing its forms"
    )
    split.add_flag(parser)
    parser.add_argument(
        "--warm-workers",
        type=int,
        metavar="N",
        default=os.environ.get("CNN_WARM_WORKERS", "2"),
        help="worker processes kept ready (torch imported, MNIST open) so a run's first point comes at once; "
        "each holds ~0.8 GB resident, ~0.47 GB of it its own; 0 to 4 (default 2, the default pair; env "
        "CNN_WARM_WORKERS)",
    )
    args = parser.parse_args()
    if not 0 <= args.warm_workers <= 4:
        parser.error("--warm-workers: give a whole number from 0 to 4")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this machine has no CUDA GPU that torch can use; try --device auto")
    if args.device == "mps" and not torch.backends.mps.is_available():
        parser.error("--device mps: Apple's Metal backend is not available here; try --device auto")
    torch.set_num_threads(1)  # the server only predicts; the cores belong to the workers
    local = args.host in ("127.0.0.1", "localhost", "::1")
    settings = {"DATA_DIR": args.data_dir, "RUNS_DIR": args.runs_dir, "CACHE_DIR": args.cache_dir}
    settings |= {"DEVICE": args.device, "LOCAL_ONLY": local, "AUTOTUNE": not args.no_autotune}
    app = create_app({**settings, "WARM_WORKERS": args.warm_workers, "DATA_PARALLEL": args.data_parallel})
    atexit.register(app.extensions["runs"].close)
    print(f"CNN Playground on http://{args.host}:{args.port}  (data: {os.path.abspath(args.data_dir)})", flush=True)
    if not data.on_disk(args.data_dir, "MNIST"):
        print(
            f"MNIST is not in {os.path.abspath(args.data_dir)} yet: the first run downloads (or unpacks) it. "
            "Offline? See README, 'Data sets, online and offline'.",
            flush=True,
        )
    app.extensions["socketio"].run(app, host=args.host, port=args.port, log_output=False)


if __name__ == "__main__":
    main()
