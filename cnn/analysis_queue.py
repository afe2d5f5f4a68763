"""The analysis queue: ended runs are analysed one at a time, and only while no run is queued or training,
so their timings compare. It waits on a condition that the run manager notifies when a run starts or ends.

Under eventlet's monkey-patching (the server) the thread and the condition are green.
"""

import collections
import logging
import threading


class AnalysisQueue:
    """busy() -> True while a run is queued or training; work(run) analyses one run and returns when done."""

    def __init__(self, busy, work):
        self.busy, self.work = busy, work
        self.changed = threading.Condition()
        self.waiting = collections.deque()
        self.thread = None

    def add(self, run):
        with self.changed:
            self.waiting.append(run)
            if self.thread is None:
                self.thread = threading.Thread(target=self._serve, daemon=True, name="analyses")
                self.thread.start()
            self.changed.notify_all()

    def poke(self):
        """A run started or ended. Never call it while holding a lock that busy() takes."""
        with self.changed:
            self.changed.notify_all()

    def _serve(self):
        while True:
            with self.changed:
                self.changed.wait_for(lambda: self.waiting and not self.busy())
                run = self.waiting.popleft()
            try:
                self.work(run)
            except Exception:  # one analysis that breaks must not stop the ones after it
                logging.getLogger(__name__).exception("analysis of run %s", run.id)
