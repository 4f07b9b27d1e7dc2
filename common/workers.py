"""DataLoader workers that never outlive the process that started them.

A worker blocked on sending a decoded batch to a parent that was killed (``kill -9``, the OOM
killer) waits forever; torch's own check of the parent only runs while a worker is idle. On
Linux the kernel kills the worker when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``);
elsewhere a thread in the worker polls its parent id.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
_POLL_SECONDS = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` (its parent) ends; end it now if that already happened.

    The kernel signal fires when the thread that started this process exits, so start workers
    from the main thread (DataLoader iterators are created where they are first iterated).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_POLL_SECONDS)
    os._exit(1)


def _init_worker(parent_pid: int, then: Callable[[int], None] | None, worker_id: int) -> None:
    die_with_parent(parent_pid)
    if then is not None:
        then(worker_id)


def worker_init_fn(then: Callable[[int], None] | None = None) -> Callable[[int], None]:
    """A DataLoader ``worker_init_fn`` tying every worker's life to the calling process; ``then`` runs after."""
    return functools.partial(_init_worker, os.getpid(), then)
