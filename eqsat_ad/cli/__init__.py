"""The ``eqsat-ad`` command line.

Subcommands: ``optimize``, ``run``, ``explain``, ``rules list``, ``rules check``, ``bench``,
``schedule show``, ``demo``; ``eqsat-ad COMMAND --help`` describes each (with examples).

Errors: every :class:`~eqsat_ad.errors.EqsatError` becomes one line on stderr,
``eqsat-ad: error: prog.ad:3:5: message``, without a traceback.  Exit codes: ``0`` success,
``1`` a failed run (ill-typed program, malformed rule file, unsound rule, optimisation
failure), ``2`` a wrong command line (unknown option, missing file, bad ``--size``), ``130``
interrupted (Ctrl-C, at any moment: ``eqsat-ad: error: interrupted``).  A numeric check of
the optimised program that could not run is a ``eqsat-ad: warning:`` line on stderr.

>>> main(["rules", "list", "--json"]) == 0  # doctest: +ELLIPSIS
[...
True
"""
from __future__ import annotations

import importlib
import os
import sys

try:
    from ..errors import EqsatError
    from .args import PROG, CLIFailure, UsageError, build_parser
except KeyboardInterrupt:            # Ctrl-C before main() runs: see eqsat_ad/__init__.py
    from .. import _interrupted_while_importing
    _interrupted_while_importing()
    raise

__all__ = ["main", "UsageError", "CLIFailure"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# words -> (module with main(argv), name in messages, does its main take --help?)
DELEGATES = {
    ("bench",): ("eqsat_ad.bench", "bench", True),
    ("rules", "check"): ("eqsat_ad.rulecheck", "rules check", True),
    ("demo",): ("eqsat_ad.demo", "demo", False),
    ("gradbench",): ("eqsat_ad.gradbench", "gradbench", True),
}


def _one_line(msg: str) -> str:
    return " ".join(ln.strip() for ln in str(msg).strip().splitlines() if ln.strip())


def error(msg: str) -> None:
    """Print ``eqsat-ad: error: msg`` (one line) on stderr."""
    print(f"{PROG}: error: {_one_line(msg)}", file=sys.stderr)


def _eqsat_message(e: EqsatError) -> str:
    msg = str(e)
    f = getattr(e, "cli_file", None)
    return f"{f}: {msg}" if f else msg


def _help_of(words: tuple[str, ...]) -> None:
    """Print our argparse help of a (delegated) subcommand."""
    try:
        build_parser().parse_args(list(words) + ["--help"])
    except SystemExit:
        pass


def _delegate(module: str, what: str, words: tuple[str, ...], rest: list[str], own_help: bool) -> int:
    """Hand ``rest`` to ``module.main(argv)``; a missing module is a clear one-line error."""
    wants_help = any(a in ("-h", "--help") for a in rest)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            if wants_help:
                _help_of(words)
                return EXIT_OK
            error(f"'{what}' is not available: the module {module} is not part of this build yet")
            return EXIT_FAILURE
        raise
    entry = getattr(mod, "main", None)
    if not callable(entry):
        if wants_help:
            _help_of(words)
            return EXIT_OK
        error(f"'{what}' is not available: {module} has no main(argv) yet")
        return EXIT_FAILURE
    if wants_help and not own_help:
        _help_of(words)
        return EXIT_OK
    # a delegate with its own parser prints its own help (description, options, examples)
    try:
        rc = entry(list(rest))
    except SystemExit as e:       # the delegate's own argparse
        code = e.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_FAILURE)
    return int(rc or 0)


def _dispatch(argv: list[str]) -> int:
    for words, (module, what, own_help) in DELEGATES.items():
        if tuple(argv[:len(words)]) == words:
            return _delegate(module, what, words, argv[len(words):], own_help)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:       # --help, --version (0) or a usage error (2)
        code = e.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    from .commands import COMMANDS
    return COMMANDS[args.func](args)


def _is_panic(e: BaseException) -> bool:
    """A Rust panic inside egglog (pyo3's PanicException derives from BaseException)."""
    return type(e).__name__ == "PanicException"


def _interrupted(restore: bool) -> int:
    """Ctrl-C: one line, exit status 130.  A second Ctrl-C while saying so is ignored; in a
    real ``eqsat-ad`` process (``restore`` False) it stays ignored until the exit."""
    import signal
    old = None
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):     # not the main thread
        old = None
    try:
        error("interrupted")
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stdout: nothing to flush
            pass
    finally:
        if restore and old is not None:
            signal.signal(signal.SIGINT, old)
    return EXIT_INTERRUPTED


def _os_message(e: OSError) -> str:
    what = e.strerror or str(e) or type(e).__name__
    names = [str(f) for f in (e.filename, e.filename2) if f]
    return f"{' -> '.join(names)}: {what}" if names else what


def _handled(argv: list[str]) -> int:
    try:
        return _dispatch(argv)
    except UsageError as e:
        error(str(e))
        return EXIT_USAGE
    except EqsatError as e:
        error(_eqsat_message(e))
        return EXIT_FAILURE
    except CLIFailure as e:
        error(str(e))
        return EXIT_FAILURE
    except RecursionError:
        error("the program is too deeply nested for this run (recursion limit reached)")
        return EXIT_FAILURE
    except MemoryError:
        error("out of memory (try smaller sizes or --limit nodes=N)")
        return EXIT_FAILURE
    except BrokenPipeError:           # e.g. `eqsat-ad rules list | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return EXIT_OK
    except OSError as e:              # a file that vanished or became unreadable mid-run, a full disk
        error(f"cannot access {_os_message(e)}")
        return EXIT_FAILURE
    except UnicodeError as e:
        error(f"a file is not UTF-8 text: {e}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 -- a bug: say so in one line, traceback on request
        if os.environ.get("EQSAT_AD_TRACEBACK"):
            raise
        error(f"internal error: {type(e).__name__}: {e} (set EQSAT_AD_TRACEBACK=1 for the traceback; "
              "please report it)")
        return EXIT_FAILURE
    except BaseException as e:
        if not _is_panic(e):
            raise                    # SystemExit, GeneratorExit: not ours to turn into a message
        if os.environ.get("EQSAT_AD_TRACEBACK"):
            raise
        error(f"internal error: egglog panicked: {e} (set EQSAT_AD_TRACEBACK=1 for the traceback; "
              "please report it)")
        return EXIT_FAILURE


def main(argv: list[str] | None = None) -> int:
    """Run ``eqsat-ad`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Every error is one line on stderr (see the module docstring); Ctrl-C at any moment is
    ``eqsat-ad: error: interrupted`` and exit status 130, without a traceback."""
    cli_process = argv is None
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        return _handled(args)
    except KeyboardInterrupt:
        return _interrupted(restore=not cli_process)


def _entry() -> None:  # pragma: no cover
    sys.exit(main())
