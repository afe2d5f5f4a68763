"""Data-parallel training on one machine's CPU cores: one process of one thread per core, each global batch's
gradient summed over the processes, so every process takes the same optimizer step from the same weights and
the run computes what one process would, up to float rounding.

The ranks meet through torch.distributed (gloo over loopback, a file rendezvous) and decide there at each
epoch's end; each step's gradients go through shared memory instead (Exchange): gloo's all_reduce of model
A's 55 k floats took 2.4-4 ms a step on a 2-core EPYC, beside 5-6 ms of compute for a half batch, so the run
gained 1.1x over one process; the shared exchange costs what the slower rank keeps the other waiting.

Rank 0 is the run's worker: it alone emits events, evaluates and writes weights. The other ranks are
processes it forks (Linux) or starts as `python -m cnn.parallel '<spec json>'` before its run_started, named
"cnn-rank" in ps and top; each shuffles and augments
the same global batches and trains its share of each. Any rank ending ends the others: a collective with a
gone peer fails, and the extra ranks die with the worker (the parent-death signal, stdin).
"""

import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np
import torch
import torch.distributed as dist

# how long a rank waits for the others at a collective: rank 0 evaluates the test set at each epoch's end
TIMEOUT = datetime.timedelta(minutes=10)
# how long the ranks wait for each other to start (import torch, open the data); a rank that died starting
# fails the run after this rather than after TIMEOUT
START_TIMEOUT = datetime.timedelta(seconds=90)
# The exchange relies on a rank's stores reaching the others in program order (its gradients before its step
# count), which x86's memory model gives and Arm's does not; and on its file's blocks being reserved when it is
# made (posix_fallocate, which macOS lacks). Elsewhere each step goes through gloo.
SHARED_EXCHANGE = platform.machine().lower() in ("x86_64", "amd64") and hasattr(os, "posix_fallocate")
# Ranks are forked from rank 0 where that is safe to do (Linux: macOS's system frameworks are not fork-safe).
# A forked rank has torch imported and the run's data on disk in the page cache: it started in 0.3-0.5 s on a
# 2-core EPYC, where a new interpreter took 2.5-4 s, the start-up that `auto` weighs against the split's gain.
FORK = sys.platform.startswith("linux")
NAME = b"cnn-rank"  # a rank's process name (ps, top; the tests find ranks by it)
SPIN_SECONDS = 0.05  # a wait for the other ranks spins (yielding the core) this long before it sleeps
LIVENESS_SECONDS = 0.2  # how often a waiting rank checks that the others are alive


class Exchange:
    """Each step's gradients summed through a file in shared memory, for ranks on one machine.

    Layout: a step count per rank, then two sets (by step parity) of a slot per rank. A rank writes its
    gradients into its slot of this step's set, then its step count, waits until every count reaches the
    step, and sums the set's slots in rank order, so every rank gets the same bits. Two sets mean no second
    wait: a rank writes step s+2's slot only after every rank has posted step s+1, that is after it read s.
    """

    def __init__(self, path, world, floats, rank, alive):
        counts = 8 * world
        self.memory = np.memmap(path, dtype=np.uint8, mode="r+", shape=(Exchange.size(world, floats),))
        self.counts = self.memory[:counts].view(np.int64)
        self.sets = torch.from_numpy(self.memory[counts:].view(np.float32)).view(2, world, floats)
        self.rank, self.world, self.alive, self.step, self.floats = rank, world, alive, 0, floats

    @staticmethod
    def size(world, floats):
        return 8 * world + 4 * 2 * world * floats

    @staticmethod
    def create(path, world, floats):
        """Makes the file with its blocks reserved: a full tmpfs raises OSError (ENOSPC) here, at the start,
        where a sparse file would kill the process with SIGBUS mid-run, at a write to a page with no room."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, Exchange.size(world, floats))
        finally:
            os.close(fd)

    def fits(self, tensors):
        return sum(t.numel() for t in tensors) == self.floats

    def sum(self, tensors):
        """-> the elementwise sum over ranks of the concatenation of tensors (every rank the same)."""
        self.step += 1
        ranks = self.sets[self.step % 2]
        torch.cat([t.reshape(-1) for t in tensors], out=ranks[self.rank])
        self.counts[self.rank] = self.step
        self.wait(self.step)
        return ranks.sum(0)

    def wait(self, step):
        started = checked = time.perf_counter()
        while self.counts.min() < step:
            now = time.perf_counter()
            if now - started < SPIN_SECONDS:
                os.sched_yield()  # the core is this rank's; another process that needs it gets it
                continue
            time.sleep(0.0005)
            if now - checked > LIVENESS_SECONDS:
                checked = now
                if not self.alive() or now - started > TIMEOUT.total_seconds():
                    raise RuntimeError(ended(self.world))

    def close(self):
        self.sets = self.counts = self.memory = None


def ended(world):
    return f"one of the run's {world} data-parallel processes ended unexpectedly; the run cannot go on"


class Group:
    """This process's place among the ranks of one run."""

    def __init__(self, rank, world, store, exchange=None):
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
        self.rank, self.world, self.store, self.exchange = rank, world, store, exchange

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
        if self.exchange is not None and self.exchange.fits(grads + [facts]):  # alike on every rank
            flat = self.exchange.sum(grads + [facts])
        else:
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
            raise RuntimeError(ended(self.world)) from exc

    def close(self):
        if self.exchange is not None:
            self.exchange.close()  # kept: its step count says how many steps went through it
        if dist.is_initialized():
            dist.destroy_process_group()


def floats(model):
    """How many numbers each step sums: the model's gradients, and the batch's loss, correct count and stop."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad) + 3


def where():
    """The folder of a run's rendezvous and exchange files: in memory, not on a disk, where there is a /dev/shm."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def exchanges(world, floats):
    """Whether each step's gradients would go through an Exchange now (else through gloo)."""
    return SHARED_EXCHANGE and fits(where(), world, floats)


def start(world, spec, floats):
    """Starts ranks 1..world-1 of a run (spec: its config, data and cache dirs, form) and joins them as rank 0.
    floats: how many numbers a step sums (floats(model)). -> (Group, the rank processes)."""
    folder = tempfile.mkdtemp(prefix="cnn-dp-", dir=where())
    store = os.path.join(folder, "store")  # the rendezvous file must not exist yet
    exchange = made(os.path.join(folder, "exchange"), world, floats) if exchanges(world, floats) else None
    shared = {"world": world, "store": store, "exchange": exchange, "floats": floats, "parent": os.getpid()}
    procs = []
    try:
        for r in range(1, world):  # in the try: a rank that cannot be started ends those that were
            procs.append(launch({**spec, **shared, "rank": r}, procs))
        group = Group(0, world, store, joined(shared, 0, lambda: all(p.poll() is None for p in procs)))
        if exchange:  # every rank mapped it before it joined: gone from /dev/shm however the run ends
            os.unlink(exchange)
        return group, procs
    except BaseException:
        end(procs)
        shutil.rmtree(folder, ignore_errors=True)
        raise


def launch(spec, earlier=()):
    """-> one rank's process: forked where FORK and no accelerator is visible, else a new interpreter. Its stdin
    is held open (it exits when that closes: we are gone), its stdout is null (ours carries the run's events),
    its stderr the worker's log. earlier: the ranks already started, whose stdin a forked rank must not hold."""
    if FORK and not accelerators():
        return Forked(spec, earlier)
    return subprocess.Popen(
        [sys.executable, "-m", "cnn.parallel", json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )


def accelerators():
    """Whether this process sees a GPU. Autograd then starts a thread per device at its first backward, even
    of a CPU run, and a process forked after that refuses to run a backward: ranks are new interpreters."""
    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or bool(xpu and xpu.is_available())


class Forked:
    """A rank forked from rank 0, with what `end` and the liveness checks use of a Popen: stdin, poll, wait,
    kill, returncode."""

    def __init__(self, spec, earlier=()):
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            raise
        if pid == 0:  # the rank: of rank 0, only this thread and a copy of its memory

            def descriptors():
                for fd in [write] + [proc.stdin.fileno() for proc in earlier]:  # their EOF is rank 0's to give
                    os.close(fd)
                os.dup2(read, 0)
                os.close(read)
                from .worker import mute

                mute(1)

            leave(spec, descriptors)
        os.close(read)
        self.pid, self.returncode = pid, None
        self.stdin = os.fdopen(write, "wb")

    def poll(self):
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): gone, as Popen takes it
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"rank {self.pid}", timeout)
            time.sleep(0.01)
        return self.returncode

    def kill(self):
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)


def made(path, world, floats):
    """-> path, the exchange's file made there; None where there was no room for it (a full tmpfs): the steps
    then go through gloo. What a failed attempt left goes with the run's folder."""
    try:
        Exchange.create(path, world, floats)
    except OSError:
        return None
    return path


def fits(folder, world, floats):
    """Whether the exchange's file has room twice over where it goes: reserving its blocks (Exchange.create)
    guards this run, the room left over guards the other users of a small tmpfs (a container's /dev/shm is
    often 64 MB), whose sparse files would die with SIGBUS where this one took the last of it."""
    try:
        free = os.statvfs(folder)
    except OSError:
        return False
    return free.f_bavail * free.f_frsize > 2 * Exchange.size(world, floats)


def joined(shared, rank, alive):
    """This rank's Exchange, or None where the steps go through gloo."""
    if not shared.get("exchange"):
        return None
    return Exchange(shared["exchange"], shared["world"], shared["floats"], rank, alive)


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


def rank(spec):
    """Trains one rank of a run (spec: its config, data and cache dirs, form, rendezvous) and returns 0."""
    from . import worker
    from .config import validate
    from .train import Trainer

    PR_SET_NAME = 15
    worker.prctl(PR_SET_NAME, NAME)
    worker.exit_on_sigterm()
    worker.die_with_parent()
    parent = spec["parent"]  # rank 0, which may have died before this rank's parent-death signal was set
    if os.getppid() != parent:
        return 1
    # one thread, and so no OpenMP team: a forked rank has a copy of rank 0's thread pool but none of its threads
    torch.set_num_threads(1)
    exchange = joined(spec, spec["rank"], lambda: os.getppid() == parent)
    group = Group(spec["rank"], spec["world"], spec["store"], exchange)
    try:
        trainer = Trainer(validate(spec["config"]), spec["data_dir"], "cpu", cache_dir=spec["cache_dir"])
        trainer.fixed_form, trainer.group = spec["form"], group
        trainer.run()
    finally:
        group.close()
    return 0


def leave(spec, before=lambda: None):
    """A rank's process, forked or a new interpreter: before(), then rank(spec), then the end of the process
    with its code, never through exit handlers or buffered output (a forked rank's are rank 0's)."""
    code = 1
    try:
        before()
        code = rank(spec)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()  # to the worker's log; the sentence for the user is rank 0's to give
    finally:
        os._exit(code)


if __name__ == "__main__":
    leave(json.loads(sys.argv[1]))
