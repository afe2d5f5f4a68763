"""Data-parallel training on one machine's CPU cores: one process of one thread per core, each global batch's
gradient summed over the processes (torch.distributed, gloo over loopback), so every process takes the same
optimizer step from the same weights and the run computes what one process would, up to float rounding.

Rank 0 is the run's worker: it alone emits events, evaluates and writes weights. The other ranks are
`python -m cnn.parallel '<spec json>'` processes it starts before its run_started; each shuffles and augments
the same global batches and trains its share of each. Any rank ending ends the others: a collective with a
gone peer fails, and the extra ranks die with the worker (the parent-death signal, stdin).
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import torch
import torch.distributed as dist

# how long a rank waits for the others at a collective: rank 0 evaluates the test set at each epoch's end
TIMEOUT = datetime.timedelta(minutes=10)
# how long the ranks wait for each other to start (import torch, open the data); a rank that died starting
# fails the run after this rather than after TIMEOUT
START_TIMEOUT = datetime.timedelta(seconds=90)


class Group:
    """This process's place among the ranks of one run."""

    def __init__(self, rank, world, store):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # ranks talk over loopback, never a network
        # a file rendezvous: no port to pick, nothing listening beyond this machine
        try:
            dist.init_process_group(
                "gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=START_TIMEOUT
            )
            self.training = dist.new_group(timeout=TIMEOUT)  # every rank; patient while rank 0 evaluates
        except (RuntimeError, dist.DistBackendError) as exc:
            raise RuntimeError(
                f"the run's {world} data-parallel processes did not all start within {START_TIMEOUT.seconds} s"
            ) from exc
        self.rank, self.world, self.store = rank, world, store

    def shard(self, n):
        """The slice of a global batch of n images that this rank trains."""
        bounds = [n * i // self.world for i in range(self.world + 1)]
        return slice(bounds[self.rank], bounds[self.rank + 1])

    def reduce(self, params, loss_sum, correct, stop):
        """Sums every rank's gradients in place (each rank's loss was its share's sum over the global batch
        size, so the sum is the global batch's mean gradient) with the batch's loss sum and correct count in
        the same message. -> (global loss sum, global correct, whether rank 0 asked to stop)."""
        grads = [p.grad for p in params if p.grad is not None]
        facts = torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(stop))])
        flat = torch.cat([g.reshape(-1) for g in grads] + [facts])
        self._all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
        loss_sum, correct, stop = flat[offset:]
        return loss_sum, correct, bool(stop > 0)

    def decide(self, stop):
        """At an epoch's end: every rank learns rank 0's word, whether the run ends here."""
        flag = torch.tensor([float(stop)])
        self._all_reduce(flag)
        return bool(flag.item() > 0)

    def _all_reduce(self, tensor):
        try:
            dist.all_reduce(tensor, group=self.training)
        except (RuntimeError, dist.DistBackendError) as exc:  # a peer is gone: its connection closed
            raise RuntimeError(
                f"one of the run's {self.world} data-parallel processes ended unexpectedly; the run cannot go on"
            ) from exc

    def close(self):
        if dist.is_initialized():
            dist.destroy_process_group()


def start(world, spec):
    """Starts ranks 1..world-1 of a run (spec: its config, data and cache dirs, form) and joins them as rank 0.
    -> (Group, the rank processes)."""
    store = os.path.join(tempfile.mkdtemp(prefix="cnn-dp-"), "store")  # the file must not exist yet
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cnn.parallel", json.dumps({**spec, "rank": r, "world": world, "store": store})],
            stdin=subprocess.PIPE,  # held open: the rank exits when it closes (we are gone)
            stdout=subprocess.DEVNULL,
        )  # stderr: the worker's own log
        for r in range(1, world)
    ]
    try:
        return Group(0, world, store), procs
    except BaseException:
        end(procs)
        shutil.rmtree(os.path.dirname(store), ignore_errors=True)
        raise


def end(procs, group=None):
    """Ends the extra ranks (already on their way out after a finished run), reaps them, and leaves the group
    (its rendezvous folder removed)."""
    for proc in procs:
        try:
            proc.stdin.close()
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if group is not None:
        group.close()
        shutil.rmtree(os.path.dirname(group.store), ignore_errors=True)


def main(argv):
    from . import worker
    from .config import validate
    from .train import Trainer

    worker.exit_on_sigterm()
    worker.die_with_parent()
    spec = json.loads(argv[1])
    torch.set_num_threads(1)
    group = Group(spec["rank"], spec["world"], spec["store"])
    try:
        trainer = Trainer(validate(spec["config"]), spec["data_dir"], "cpu", cache_dir=spec["cache_dir"])
        trainer.fixed_form, trainer.group = spec["form"], group
        trainer.run()
    finally:
        group.close()


if __name__ == "__main__":
    try:
        main(sys.argv)
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except Exception:
        traceback.print_exc()  # to the worker's log; the sentence for the user is rank 0's to give
        os._exit(1)
    os._exit(0)
