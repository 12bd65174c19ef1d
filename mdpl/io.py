"""Atomic file output and output-directory checks: the one place every result file is written through.

A file under its final name is always complete: :func:`atomic_write` writes
to a hidden temporary in the same directory (``.<name>.<random>.tmp``) and
moves it into place with :func:`os.replace` (atomic on POSIX); a failed or
interrupted write leaves no file under the final name. Results get the
ordinary mode of new files (``0666`` less the umask: ``0644`` usually), not
the ``0600`` of :func:`tempfile.mkstemp`.

:func:`check_output_dir` is called by every command before any work starts,
so a bad ``--out`` is one line, not a traceback after an hour.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from mdpl.errors import ConfigError


def _file_mode() -> int:
    """Mode of an ordinary new file: 0666 less the process umask (0644 under the usual umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and move the finished file onto ``path`` atomically; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj, **kw) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (``kw`` go to :func:`json.dumps`)."""
    kw.setdefault("indent", 1)
    return atomic_write_text(path, json.dumps(obj, **kw))


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda p: torch.save(obj, p))


def atomic_netcdf(path: str | os.PathLike, ds) -> Path:
    """``ds.to_netcdf`` to ``path`` atomically."""
    return atomic_write(path, lambda p: ds.to_netcdf(p))


def read_json_or_none(path: str | os.PathLike):
    """The JSON in ``path``, or None when it is missing, empty or damaged (a cache entry to recompute)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output_dir(path: str | os.PathLike, *, option: str = "--out", data_dirs=(), create: bool = True) -> Path:
    """Check (and with ``create`` make) an output directory before any work; returns it.

    A :class:`ConfigError` naming ``option`` when ``path`` is an existing
    file, cannot be created or written, or is (inside) one of ``data_dirs``
    (results never go into the data).
    """
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{option} {p}: exists and is not a directory")
    resolved = p.resolve()
    for d in data_dirs:
        if d is None:
            continue
        d = Path(d).expanduser().resolve()
        if _inside(resolved, d):
            raise ConfigError(f"{option} {p}: inside the data directory {d}; write results elsewhere")
    for parent in [resolved, *resolved.parents]:  # the nearest existing ancestor must be a writable directory
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {p}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK) or not parent.stat().st_mode & 0o200:  # read-only, even for root
                raise ConfigError(f"{option} {p}: {parent} is not writable")
            break
    if create:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{option} {p}: cannot create it ({e.strerror})") from None
    return p


def check_output_file(path: str | os.PathLike, *, option: str = "--out", data_dirs=()) -> Path:
    """Check an output file path before any work: not a directory, its folder creatable and writable."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ConfigError(f"{option} {p}: is a directory, expected a file name")
    check_output_dir(p.parent if str(p.parent) else Path("."), option=option, data_dirs=data_dirs)
    return p


def safe_name(name: str, *, what: str = "site name") -> str:
    """``name`` if it is a plain file name (no separator, no '..', not hidden); else a ConfigError.

    Site codes become file names under an output directory; this keeps every
    one of them inside it.
    """
    s = str(name)
    if (not s or s in (".", "..") or s.startswith(".") or "/" in s or "\\" in s or "\0" in s
            or os.sep in s or (os.altsep and os.altsep in s)):
        raise ConfigError(f"{what} {name!r}: not a plain name (no path separators, no leading '.')")
    return s
