"""The faces step's process pool: an input that crashes a worker is isolated, and workers die with their parent."""
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def exit_with_parent():
    """Make this worker process end when the process that started it ends, even by kill -9 (a worker holds
    ~170 MB of dlib models; orphans used to live on). Linux: the kernel sends SIGKILL at the parent's death
    (prctl PR_SET_PDEATHSIG), which works while the worker is busy inside dlib. Elsewhere, and as a second line: a
    thread waits on the parent's sentinel (readable once the parent is gone), or polls os.getppid()."""
    parent = multiprocessing.parent_process()
    parent_pid = parent.pid if parent is not None else os.getppid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above: nobody would send the signal
        os._exit(1)

    def watch():
        if parent is not None and parent.sentinel is not None:
            multiprocessing.connection.wait([parent.sentinel])
        else:
            while os.getppid() == parent_pid:
                threading.Event().wait(1.0)
        os._exit(1)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _start_worker(initializer, initargs):
    exit_with_parent()
    if initializer is not None:
        initializer(*initargs)


def pool_results(todo, workers, work, initializer, initargs):
    """Yield (item, work(item)) for every item from a spawned process pool, in completion order. A worker that
    dies (a crash inside dlib or a decoder) takes the pool's in-flight items with it: those are retried one at a
    time in a fresh pool, and an item that kills a worker on its own comes back as (item, None)."""
    context = multiprocessing.get_context("spawn")  # each worker builds its own dlib objects; no forked threads
    pending, suspects = deque(todo), deque()
    while pending or suspects:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                   initargs=(initializer, initargs))
        running = {}
        try:
            while pending or suspects or running:
                if suspects and not running:
                    item = suspects.popleft()
                    running[pool.submit(work, item)] = item
                elif not suspects:
                    while pending and len(running) < 4 * workers:
                        item = pending.popleft()
                        running[pool.submit(work, item)] = item
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    result = future.result()  # raises BrokenProcessPool when a worker died
                    yield running.pop(future), result
        except BrokenProcessPool:
            if len(running) == 1:  # it was alone in the pool: it is the one that killed its worker
                yield next(iter(running.values())), None
            else:
                suspects.extend(running.values())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
