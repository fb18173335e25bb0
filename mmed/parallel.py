"""Independent trainings in worker processes: one pool for every step that has several.

A step with independent trainings — the triage's and the attending's cold starts and the
attending's image-only reference (notebook 02), the triage GRPO of every seed (notebook 03),
every (seed, variant) curriculum (notebook 04) — hands them to :func:`run_jobs` (or to
:func:`start_jobs`, which returns at once so that this process can train beside them:
notebook 03's own triage seed), which runs
them in a ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method (a
fresh interpreter per worker: no forked torch/OpenMP state). Each worker first quiets its
libraries as a notebook's kernel does (:func:`mmed.quiet.quiet_libraries`) and sets the
profile's torch threads (:func:`mmed.config.apply_torch_threads`). The number of workers is
the profile's ``workers`` key (None: the machine's usable cores), at most the number of jobs;
one worker runs the jobs in this process, one after another. A worker may use its share of
the cores (``usable_cores() // workers``): a block that takes every core in one process
(the pre-training, a cold start: :func:`mmed.config.torch_threads`) takes that share in a
worker, never more threads than cores.

Jobs of one run folder share its manifest, which :class:`mmed.runs.Run` updates under a file
lock; a finished training is reused by the job function itself, so a resumed step trains only
what is missing. The workers' trainings report their steps through a queue; this process
draws one live bar per training (:mod:`mmed.progress`). The pool is kept for the next step
of the same process (:func:`shutdown_pools` stops it; interpreter exit does). A failing job stops the step: the jobs not yet started are cancelled and a
``RuntimeError`` names the failed job with the worker's error.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .processes import can_spawn_workers


@dataclass(frozen=True)
class Job:
    """One independent training: ``fn(*args, **kwargs)`` in a worker process.

    Attributes:
        label: what the error message and the progress log call it, e.g.
            ``"triage GRPO seed 1"``.
        fn: a module-level function (it is pickled by name for the ``spawn`` workers).
        args, kwargs: its arguments, picklable.
    """

    label: str
    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


def usable_cores() -> int:
    """The CPU cores this process may use, at least 1: :func:`mmed.config.cores_for_this_process`
    (inside a worker process, its share)."""
    from .config import cores_for_this_process

    return cores_for_this_process()


def worker_count(profile: Any, n_jobs: int, workers: int | None = None) -> int:
    """How many worker processes :func:`run_jobs` starts for ``n_jobs`` jobs.

    Args:
        profile: a :class:`mmed.config.Profile`; its ``workers`` key is used when
            ``workers`` is None (None there: :func:`usable_cores`).
        n_jobs: the number of jobs (>= 0).
        workers: an explicit count (>= 1) or None.
    Returns:
        ``min(workers, n_jobs)``, at least 1; 1 in a program read from standard input
        (:func:`mmed.processes.can_spawn_workers`: its workers could not start).
    Raises:
        ValueError: ``workers`` < 1.
    """
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers must be >= 1 or None, got {workers}")
    if not can_spawn_workers():
        return 1
    n = workers if workers is not None else (getattr(profile, "workers", None) or usable_cores())
    return max(1, min(int(n), n_jobs))


def _init_worker(torch_threads: int | None, progress_queue: Any = None, cores: int = 1) -> None:
    """A worker's start: Ctrl-C ignored (the parent stops the pool), its share of the cores (``cores``, what a block that takes every
    core gets here: :func:`mmed.config.torch_threads`), quiet the libraries before they are
    imported (bitsandbytes warns on import), send its trainings' progress to the parent
    (:mod:`mmed.progress`), then the profile's torch threads."""
    from .config import CORES_PER_PROCESS_ENV
    from .quiet import quiet_libraries

    import signal

    # Ctrl-C (and a notebook kernel's interrupt or shutdown, sent to its process group) is
    # the parent's to handle: it stops the pool (run_jobs); an idle kept worker would
    # otherwise print a KeyboardInterrupt traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ[CORES_PER_PROCESS_ENV] = str(max(1, cores))
    quiet_libraries()
    from .progress import set_worker_queue  # after quieting: it imports transformers' trainer

    set_worker_queue(progress_queue)
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)


def _call(job: Job) -> Any:
    return job.fn(*job.args, **job.kwargs)


def run_jobs(
    jobs: Sequence[Job], profile: Any, workers: int | None = None, log: Callable[[str], None] | None = print,
    what: str = "trainings",
) -> list[Any]:
    """Run independent ``jobs`` in worker processes and return their results in job order:
    ``start_jobs(jobs, profile, workers, log, what).results()`` (:func:`start_jobs`).

    Args:
        jobs: the :class:`Job` list (may be empty).
        profile: the run's profile (``workers``, ``torch_threads``).
        workers: None → :func:`worker_count` from the profile; 1 runs every job in this
            process, one after another (same results: each job seeds its own training).
        log: one line saying how many jobs in how many processes (None: silent).
        what: the noun of that line, e.g. ``"cold starts"``.
    Returns:
        ``[job.fn(*job.args, **job.kwargs) for job in jobs]``.
    Raises:
        RuntimeError: with workers, a job failed — ``"<label> failed: <error type>:
            <message>"``, chained to the worker's exception; the pool is stopped (the jobs
            not yet started cancelled, the running ones waited for). In this process (one
            worker) the job's own exception propagates.
    """
    return start_jobs(jobs, profile, workers, log=log, what=what).results()


class StartedJobs:
    """Jobs handed to the worker pool by :func:`start_jobs`, running while this process goes
    on; :meth:`results` waits for them. With one worker nothing runs before
    :meth:`results`, which then runs every job here, one after another."""

    def __init__(self, jobs: Sequence[Job], futures: list[Any] | None, key: tuple | None):
        self.jobs, self._futures, self._key = list(jobs), futures, key
        self._results: list[Any] | None = None
        self._here: dict[int, Any] = {}  # without workers: the results of the jobs run so far, by index
        self._cancelled = False

    def results(self) -> list[Any]:
        """The jobs' results in job order (computed once; a second call returns them again).

        Raises:
            RuntimeError / the job's own exception: as :func:`run_jobs`.
        """
        if self._results is None:
            self._results = self.wait(range(len(self.jobs)))
        return self._results

    def wait(self, indices: Sequence[int]) -> list[Any]:
        """The results of the jobs at ``indices`` (positions in :attr:`jobs`), in that order,
        once those are done; the others go on running (notebook 02 consults with the agents'
        cold starts while an image-only reference still trains). Without workers, those jobs
        run here now, each once.

        Raises:
            IndexError: an index outside :attr:`jobs`.
            RuntimeError / the job's own exception: as :func:`run_jobs` — any job that fails
                while this waits, waited for or not, stops the pool; also after :meth:`cancel`.
        """
        indices = list(indices)
        bad = [i for i in indices if not 0 <= i < len(self.jobs)]
        if bad:
            raise IndexError(f"job index(es) {bad} outside the {len(self.jobs)} jobs")
        if self._futures is None:
            for i in indices:
                if i not in self._here:
                    self._here[i] = _call(self.jobs[i])  # a failure propagates as raised
            return [self._here[i] for i in indices]
        if self._cancelled:
            raise RuntimeError(f"these {len(self.jobs)} jobs were cancelled (StartedJobs.cancel): no results")
        from concurrent.futures import FIRST_COMPLETED, wait

        key, futures = self._key, self._futures
        wanted = [futures[i] for i in indices]
        while True:
            # a failure of any job, waited for or not, is reported as soon as it happens
            for fut, job in zip(futures, self.jobs):
                if fut.done() and not fut.cancelled() and fut.exception() is not None:
                    e = fut.exception()
                    # stop the pool at once: the jobs not started are cancelled, the running ones killed
                    # (a killed training leaves no final weights: a rerun trains it again)
                    shutdown_pools(key, kill=True)
                    raise RuntimeError(f"{job.label} failed: {type(e).__name__}: {e}") from e
            if all(f.done() for f in wanted):
                return [f.result() for f in wanted]
            try:
                wait([f for f in futures if not f.done()], return_when=FIRST_COMPLETED)
            except BaseException:  # Ctrl-C / a kernel interrupt: the workers ignore it, so stop them here
                shutdown_pools(key, kill=True)
                raise

    def cancel(self) -> None:
        """Stop the jobs (this process failed or was interrupted meanwhile): those not started
        are cancelled, the running ones' workers terminated (their trainings leave no final
        weights: a rerun trains them again). Nothing to do without a worker (the jobs run in
        :meth:`results`)."""
        if self._futures is not None and self._results is None:
            self._cancelled = True
            shutdown_pools(self._key, kill=True)


def start_jobs(
    jobs: Sequence[Job], profile: Any, workers: int | None = None, log: Callable[[str], None] | None = print,
    what: str = "trainings", beside: bool = False,
) -> StartedJobs:
    """Hand independent ``jobs`` to the worker pool and return at once, so that this process
    can train or evaluate something else meanwhile; :meth:`StartedJobs.results` waits.

    Arguments as :func:`run_jobs`, and ``beside``: this process trains something meanwhile
    (notebook 03 trains the run's own triage seed while the other seeds train in workers), so
    even a single job goes to a worker process when more than one process is allowed
    (``workers``, else the profile's ``workers``, else the usable cores), and each worker's
    share of the cores counts this process's training too. Without a worker (one process
    allowed, or a program read from standard input) the jobs run in this process, one after
    another, only when :meth:`StartedJobs.results` is called. Jobs beside a training share
    the cores with it: three one-thread trainings on two cores take about 1.5 times as long
    each, but keep both cores busy throughout.
    """
    n = worker_count(profile, len(jobs), workers)
    # beside a training here, even one job goes to a worker when two processes are allowed
    in_pool = n > 1 or (beside and bool(jobs) and worker_count(profile, 2, workers) > 1)
    if log and jobs:
        where = f"in {n} worker process(es)" if in_pool else "in this process, one after another"
        log(f"{len(jobs)} {what} {where}: " + ", ".join(j.label for j in jobs))
    if not in_pool:
        return StartedJobs(jobs, None, None)
    key = _pool_key(n, getattr(profile, "torch_threads", None), beside=1 if beside else 0)
    pool = _pool(key)
    return StartedJobs(jobs, [pool.submit(_call, job) for job in jobs], key)


#: the worker pools of this process, kept between steps (:func:`_pool`): ``{key: (executor, progress queue)}``
_POOLS: dict[tuple, tuple[Any, Any]] = {}


def _pool_key(n: int, torch_threads: int | None, beside: int = 0) -> tuple:
    """(workers, torch threads, cores per worker, progress on); ``beside``: trainings this
    process runs meanwhile, which take their share of the cores too."""
    from .progress import progress_enabled

    return (n, torch_threads, max(1, usable_cores() // (n + beside)), progress_enabled())


def _pool(key: tuple) -> Any:
    """The ``ProcessPoolExecutor`` of ``key`` = (workers, torch threads, cores per worker,
    progress on), started on first use and kept for the next step of this process (a
    notebook kernel, a test session, a benchmark): a worker's start — a fresh interpreter
    importing torch, transformers and TRL — costs several seconds, more than a smoke
    training. Workers keep nothing of a job but imported modules: each job gets its profile
    and run folder as arguments and seeds its own training."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from .progress import board

    entry = _POOLS.get(key)
    if entry is None:
        n, threads, cores, progress = key
        ctx = get_context("spawn")
        # the workers' trainings report their steps here; this process draws one bar per training
        queue = ctx.Queue() if progress else None
        if queue is not None:
            board().listen(queue)
        pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker, initargs=(threads, queue, cores))
        entry = _POOLS[key] = (pool, queue)
    return entry[0]


def shutdown_pools(key: tuple | None = None, kill: bool = False) -> int:
    """Stop the kept worker pools (``key``: only that one), cancelling the jobs not started
    and waiting for the running ones — or, with ``kill``, terminating their workers
    (``ProcessPoolExecutor.terminate_workers`` where Python has it, 3.14+; else each worker
    process's ``terminate``). Returns how many pools were stopped. Called when a job fails
    (``kill``) and at interpreter exit."""
    keys = [k for k in list(_POOLS) if key is None or k == key]
    for k in keys:
        pool, queue = _POOLS.pop(k)
        if kill:
            if hasattr(pool, "terminate_workers"):
                pool.terminate_workers()
            else:  # Python < 3.14: the executor's own table of its worker processes, read before
                # shutdown() (which empties it on 3.11, leaving nothing to terminate)
                procs = list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for proc in procs:
                    proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        if queue is not None:
            queue.put(None)  # ends the board's listener thread
    return len(keys)


atexit.register(shutdown_pools)
