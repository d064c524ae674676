"""SIGINT, SIGTERM and SIGHUP for the command lines: the first stops the work where it can
be kept, a second ends the process at once, without a traceback.

Ctrl-C sends SIGINT; batch schedulers, Kubernetes, `timeout` and `ray job stop` send
SIGTERM; a closed terminal or a dropped ssh session sends SIGHUP: all are handled alike.
By default a signal raises `Interrupted` in the main thread; inside
`graceful(stop)` it calls `stop()` instead, for work that stops itself cleanly (Ray Tune's
trials: search/run.py). `qamodels.train` keeps its best epoch; `search.run` marks the
experiment PARTIAL and prints the command that resumes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator

# 128 + the signal, as shells report
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def exit_code(signum: int) -> int:
    return EXIT_CODES.get(signum, 128 + signum)


class Interrupted(KeyboardInterrupt):
    """A signal stopped the work (a KeyboardInterrupt: no `except Exception` swallows it);
    `detail` says how far it had come, when known."""

    def __init__(self, signum: int, detail: str = ""):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.detail = signum, detail

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)


class SignalGuard:
    """Installed by a command's main; `received` is the first signal, if any."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._stop: Callable[[], None] | None = None
        self._ending = False
        self._deferring = False
        self._previous: dict[int, object] = {}

    def install(self) -> SignalGuard:
        """Call again after a library (Ray) installed handlers of its own."""
        for signum in EXIT_CODES:
            previous = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, previous)
        return self

    @contextlib.contextmanager
    def handling(self) -> Iterator[SignalGuard]:
        """A command's main: the guard's handlers inside, the process's own afterwards (a
        main called in-process, by tests or a notebook, leaves nothing behind)."""
        self.received, self._previous = None, {}
        self.install()
        try:
            yield self
        finally:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
            self._previous = {}

    def _handle(self, signum: int, _frame) -> None:
        name, code = signal.Signals(signum).name, exit_code(signum)
        if self.received is not None:
            print(f"{name} again: stopping now", file=sys.stderr, flush=True)
            os._exit(code)
        if self._ending:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        self.received = signum
        if self._deferring:  # inside a library's start-up: raised when it has returned
            return
        if self._stop is not None:
            print(f"{name}: stopping (again to stop at once) ...", file=sys.stderr, flush=True)
            self._stop()
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def graceful(self, stop: Callable[[], None]) -> Iterator[None]:
        """Within the block a signal calls `stop()` (which ends the work soon) instead of
        raising; afterwards `check()` tells whether one came."""
        self._stop = stop
        try:
            yield
        finally:
            self._stop = None

    @contextlib.contextmanager
    def ending(self) -> Iterator[None]:
        """A command's last seconds, everything written and said: a signal ends the process
        at once, quietly. Never by raising: the signal may land in a finalizer, where an
        exception is printed with a traceback and ignored (seen while Ray shut down)."""
        self._ending = True
        try:
            yield
        finally:
            self._ending = False

    @contextlib.contextmanager
    def deferring(self, exits: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """Around a library's start-up (ray.init): a signal is recorded, not raised inside
        it (a KeyboardInterrupt inside Ray's start-up was swallowed by a fork hook, or
        crashed the process), and raised as Interrupted once it has returned, with this
        guard's handlers back in place of any the library installed. `exits`: what the
        library's own handler raises for a signal meanwhile (Ray's SIGTERM handler:
        SystemExit), taken as that signal."""
        self._deferring = True
        try:
            yield
        except exits as err:
            code = getattr(err, "code", None)
            self.received = self.received or (code if code in EXIT_CODES else signal.SIGTERM)
        finally:
            self._deferring = False
            self.install()
        self.check()

    def check(self, detail: str = "") -> None:
        if self.received is not None:
            raise Interrupted(self.received, detail)


GUARD = SignalGuard()  # the process's; nothing is handled until a command installs it
