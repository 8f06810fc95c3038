"""Files the ``eqsat-ad`` command reads and writes.

* :func:`read_program_text` reads a program file (or stdin for ``-``) with the reader's size
  cap applied while reading (a 10 GB file or ``/dev/zero`` is refused after the cap, not
  read whole); a file that is not UTF-8 text, a directory or an unreadable path is a
  one-line error naming the file.
* :class:`OutputGuard` knows the input files of a run (program, rule files, schedule file,
  ``--input`` arrays) and refuses, before the run, an output path that is one of them, a
  directory, or in a missing or read-only directory (exit status 2).
* :func:`atomic_write` writes an output through a temporary file in the same directory,
  then :func:`os.replace`: an interrupted or failed run never leaves a half-written file, and
  the old file stays until the new one is complete.  Existing special files (``/dev/null``,
  ``/dev/stdout``, a FIFO) are written in place; a symlink is followed (its target is
  replaced).

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "out.txt")
>>> with atomic_write(p) as f:
...     _ = f.write(b"hello")
>>> open(p).read(), sorted(os.listdir(d))
('hello', ['out.txt'])
"""
from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO, Iterator

from ..errors import ParseError
from .args import CLIFailure, UsageError

__all__ = ["read_program_text", "OutputGuard", "atomic_write", "atomic_path", "write_text"]


def _utf8(data: bytes, name: str, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        text = data[:e.start].decode("utf-8", errors="replace")
        line = text.count("\n") + 1
        col = e.start - (text.rfind("\n") + 1 if "\n" in text else 0) + 1
        raise ParseError(f"{what} is not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x}): "
                         f"is it a binary file?", name, line, col) from None


def read_program_text(path: str, max_bytes: int | None = None, what: str = "program file") -> tuple[str, str]:
    """``(text, name)`` of a program file, or of stdin for ``-`` (name ``<stdin>``).

    At most ``max_bytes`` (default: the reader's cap, :data:`eqsat_ad.lang.syntax.MAX_CHARS`)
    are read; a longer file is a :class:`ParseError` naming it and the limit.  A missing
    file, a directory or an unreadable path is a :class:`UsageError`."""
    from ..lang import syntax
    limit = syntax.MAX_CHARS if max_bytes is None else max_bytes
    if path == "-":
        name = "<stdin>"
        stream = getattr(sys.stdin, "buffer", None)
        try:
            if stream is not None:
                data = stream.read(limit + 1)
            else:                                  # a text stream (tests)
                data = sys.stdin.read(limit + 1).encode("utf-8")
        except OSError as e:
            raise UsageError(f"cannot read the program from stdin: {e.strerror or e}") from None
    else:
        name = path
        p = Path(path)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise UsageError(f"no such {what}: {path}") from None
        except OSError as e:
            raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{what} {path} is a directory, not a file")
        try:
            with open(p, "rb") as f:
                data = f.read(limit + 1)
        except OSError as e:
            raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(data) > limit:
        raise ParseError(f"the {what} is larger than the reader's limit of {limit} bytes "
                         f"(raise it with --max-program-bytes)", name, None, None)
    return _utf8(data, name, what), name


# -- outputs ----------------------------------------------------------------------------------

def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


class OutputGuard:
    """The input files of a run; :meth:`check` refuses an output that would overwrite one."""

    def __init__(self) -> None:
        self.inputs: list[tuple[str, str]] = []      # (path, what)

    def add(self, path, what: str) -> None:
        if path and str(path) != "-":
            self.inputs.append((str(path), what))

    def check(self, path: str | None, option: str, stdout_ok: bool = True) -> None:
        """Refuse ``path`` for ``option`` when it is an input, a directory, or in a missing
        directory (``-`` is stdout, allowed when ``stdout_ok``)."""
        if path is None:
            return
        if path == "-":
            if not stdout_ok:
                raise UsageError(f"{option} needs a file name ('-' for stdout is not possible here: "
                                 f"{'the result is printed on stdout already' if option == '--output' else 'the format comes from the suffix'})")
            return
        if not path.strip():
            raise UsageError(f"{option} needs a file name")
        target = Path(path)
        if target.is_dir():
            raise UsageError(f"cannot write {option} {path}: it is a directory")
        parent = target.parent
        if not parent.is_dir():
            raise UsageError(f"cannot write {option} {path}: no such directory {parent}")
        if not target.exists() and not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write {option} {path}: the directory {parent} is not writable")
        for inp, what in self.inputs:
            if _same_file(path, inp):
                raise UsageError(f"{option} {path} is the {what}: refusing to overwrite an input "
                                 f"file")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path next to ``path`` (same suffix) to write to; on success it replaces
    ``path`` (atomically), on failure it is removed.  An existing non-regular file
    (``/dev/null``, a FIFO) is written in place: the path itself is yielded."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise CLIFailure(f"cannot write {path}: {e.strerror or e}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise CLIFailure(f"cannot write {path}: it is a directory")
        yield str(path)
        return
    d, base = os.path.split(real)
    suffix = "".join(Path(base).suffixes[-1:])
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=d or ".")
    except OSError as e:
        raise CLIFailure(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st is not None else _umask_mode())
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file object whose contents replace ``path`` once the block succeeds
    (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        try:
            f = open(tmp, "wb")
        except OSError as e:
            raise CLIFailure(f"cannot write {path}: {e.strerror or e}") from None
        with f:
            yield f


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, or to stdout for ``-``."""
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with atomic_write(path) as f:
            f.write(text.encode("utf-8"))
    except OSError as e:
        raise CLIFailure(f"cannot write {path}: {e.strerror or e}") from None
