"""Unpack an OCI layer tarball into its own directory, in overlayfs form, confined to it.

Each layer gets an independent directory (keyed by its diff_id) that can be stacked as an
overlayfs lowerdir: OCI whiteouts are converted to overlay's own markers as they are met —
`.wh.NAME` becomes a character device 0/0 named NAME, `.wh..wh..opq` becomes the xattr
`trusted.overlay.opaque=y` on its directory — so stacking the directories in order gives
exactly the image's filesystem.

Invariants: gzip, zstd and uncompressed tars are recognised by their magic bytes; the
uncompressed stream's sha256 (the diff_id) is computed while extracting, and with an
expected diff_id the content is checked before the directory gets its final name;
extraction goes to `<dest>.partial` and is renamed into place only on success.

Confinement (what containerd's archive package guarantees): one parser (tarfile, streaming)
reads the layer and every write goes through directory file descriptors opened component by
component with O_NOFOLLOW from the layer's root (openat-style), so no entry can write
through a symlink an earlier entry planted, whatever the names. Absolute names and `..`
components are refused; hard links only to files already in the layer; whiteouts naming
``, `.` or `..` are refused; other AUFS metadata whiteouts (`.wh..wh.*`) are skipped.
Ownership (numeric), modes (set-id bits included), mtimes, device nodes and fifos are
kept as root extracts them (as GNU tar did before); of xattrs only `security.capability`
and `user.*` (a layer must not set trusted.overlay.* itself).
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META = ".wh..wh."
OPAQUE = ".wh..wh..opq"
XATTR_PAX = "SCHILY.xattr."
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class LayerError(ValueError):
    """A layer that cannot be unpacked safely: a path out of its directory, a bad whiteout,
    a corrupt stream or content that does not match its diff_id."""


def _chunks(f: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk


def decompressed(f: BinaryIO) -> Iterator[bytes]:
    """The uncompressed byte stream of a layer blob (gzip, zstd or plain tar)."""
    head = f.read(4)
    f.seek(0)
    if head[:2] == GZIP_MAGIC:
        d = zlib.decompressobj(wbits=47)  # gzip, possibly multi-member
        for chunk in _chunks(f):
            while chunk:
                out = d.decompress(chunk)
                if out:
                    yield out
                if d.eof:
                    chunk = d.unused_data
                    d = zlib.decompressobj(wbits=47)
                else:
                    chunk = b""
        tail = d.flush()
        if tail:
            yield tail
    elif head == ZSTD_MAGIC:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        yield from _chunks(reader)
    else:
        yield from _chunks(f)


class _HashingReader:
    """A read-only file over the uncompressed stream; every byte of it goes into `hash`."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self.hash = hashlib.sha256()

    def _more(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        self.hash.update(chunk)
        self._buf, self._pos = self._buf[self._pos:] + chunk, 0
        return True

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buf) - self._pos < n) and self._more():
            pass
        end = len(self._buf) if n < 0 else self._pos + n
        out = self._buf[self._pos:end]
        self._pos += len(out)
        return out

    def drain(self) -> None:
        """Hash the rest of the stream (tar's end blocks and any padding)."""
        self._buf, self._pos = b"", 0
        for chunk in self._chunks:
            self.hash.update(chunk)


def _ns(mtime: float) -> tuple[int, int]:
    """(atime, mtime) in nanoseconds for os.utime from a tar mtime (an int, or a float from PAX)."""
    ns = int(mtime * 1_000_000_000)
    return ns, ns


def split_path(name: str, what: str = "path") -> list[str]:
    """A layer member's name as components inside the layer; LayerError if it would leave it."""
    if name.startswith("/"):
        raise LayerError(f"{what} {name!r} is absolute: a layer only writes inside its directory")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"{what} {name!r} contains '..': a layer only writes inside its directory")
    return parts


class _Extractor:
    """Writes tar members under `root` through directory fds, never following a symlink."""

    def __init__(self, root: Path) -> None:
        self.rootfd = os.open(root, DIR_FLAGS)
        self.as_root = os.geteuid() == 0
        self.dir_times: list[tuple[list[str], float]] = []

    def close(self) -> None:
        os.close(self.rootfd)

    def open_dir(self, parts: list[str], create: bool) -> int:
        """An fd of the directory `parts` below the root, each component opened with O_NOFOLLOW
        (and made, 0755, when missing and `create`)."""
        fd = os.dup(self.rootfd)
        try:
            for part in parts:
                try:
                    nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise LayerError(f"path {'/'.join(parts)!r} goes through {part!r}, a symlink or not a "
                                         "directory: a layer cannot write through it") from None
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _remove(pfd: int, name: str) -> None:
        """Remove what is at `name` in the directory `pfd` (a directory recursively), if anything."""
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)

    def _meta(self, fd: int, ti: tarfile.TarInfo) -> None:
        """Owner, mode (after chown, which clears set-id bits) and allowed xattrs of an open file."""
        if self.as_root:
            os.fchown(fd, ti.uid, ti.gid)
        os.fchmod(fd, ti.mode & 0o7777)
        for key, value in ti.pax_headers.items():
            if not key.startswith(XATTR_PAX):
                continue
            name = key[len(XATTR_PAX):]
            if name == "security.capability" or name.startswith("user."):
                try:
                    os.setxattr(fd, name, value.encode("utf-8", "surrogateescape"))
                except OSError as e:  # as GNU tar: an xattr the filesystem refuses is not fatal
                    if e.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise

    def add(self, tf: tarfile.TarFile, ti: tarfile.TarInfo) -> None:
        parts = split_path(ti.name)
        if not parts:
            return  # "./": the layer directory itself
        base = parts[-1]
        pfd = self.open_dir(parts[:-1], create=True)
        try:
            if base.startswith(WHITEOUT_PREFIX):
                self._whiteout(pfd, parts)
            elif ti.isdir():
                self._dir(pfd, parts, ti)
            elif ti.issym():
                self._remove(pfd, base)
                os.symlink(ti.linkname, base, dir_fd=pfd)
                if self.as_root:
                    os.chown(base, ti.uid, ti.gid, dir_fd=pfd, follow_symlinks=False)
                os.utime(base, ns=_ns(ti.mtime), dir_fd=pfd, follow_symlinks=False)
            elif ti.islnk():
                self._hardlink(pfd, parts, ti)
            elif ti.ischr() or ti.isblk() or ti.isfifo():
                self._node(pfd, base, ti)
            else:
                self._file(pfd, base, tf, ti)
        finally:
            os.close(pfd)

    def _whiteout(self, pfd: int, parts: list[str]) -> None:
        base = parts[-1]
        if base == OPAQUE:
            os.setxattr(pfd, "trusted.overlay.opaque", b"y")
            return
        if base.startswith(WHITEOUT_META):
            return  # AUFS metadata (.wh..wh.plnk, ...): never applied, as containerd
        target = base[len(WHITEOUT_PREFIX):]
        if target in ("", ".", ".."):
            raise LayerError(f"whiteout {'/'.join(parts)!r} names {target!r}: refused")
        self._remove(pfd, target)
        os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)

    def _dir(self, pfd: int, parts: list[str], ti: tarfile.TarInfo) -> None:
        base = parts[-1]
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(base, dir_fd=pfd)
                os.mkdir(base, 0o700, dir_fd=pfd)
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=pfd)
        fd = os.open(base, DIR_FLAGS, dir_fd=pfd)
        try:
            self._meta(fd, ti)
        finally:
            os.close(fd)
        self.dir_times.append((parts, ti.mtime))  # set last: entries below change it

    def _file(self, pfd: int, base: str, tf: tarfile.TarFile, ti: tarfile.TarInfo) -> None:
        self._remove(pfd, base)
        fd = os.open(base, FILE_FLAGS, 0o600, dir_fd=pfd)
        with os.fdopen(fd, "wb", closefd=True) as out:
            src = tf.extractfile(ti)
            if src is not None:
                shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            self._meta(fd, ti)
            os.utime(fd, ns=_ns(ti.mtime))

    def _node(self, pfd: int, base: str, ti: tarfile.TarInfo) -> None:
        self._remove(pfd, base)
        kind = stat.S_IFCHR if ti.ischr() else stat.S_IFBLK if ti.isblk() else stat.S_IFIFO
        os.mknod(base, kind | 0o600, os.makedev(ti.devmajor, ti.devminor), dir_fd=pfd)
        if self.as_root:
            os.chown(base, ti.uid, ti.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(base, ti.mode & 0o7777, dir_fd=pfd)  # just made by us: not a symlink
        os.utime(base, ns=_ns(ti.mtime), dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, pfd: int, parts: list[str], ti: tarfile.TarInfo) -> None:
        target = split_path(ti.linkname, "hard link target")
        if not target:
            raise LayerError(f"hard link {ti.name!r} to {ti.linkname!r}: not a file in the layer")
        if target == parts:
            return
        try:
            tfd = self.open_dir(target[:-1], create=False)
        except FileNotFoundError:
            raise LayerError(f"hard link {ti.name!r} to {ti.linkname!r}: no such file in the layer") from None
        try:
            st = os.stat(target[-1], dir_fd=tfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise LayerError(f"hard link {ti.name!r} to {ti.linkname!r}: a directory")
            self._remove(pfd, parts[-1])
            os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerError(f"hard link {ti.name!r} to {ti.linkname!r}: no such file in the layer") from None
        finally:
            os.close(tfd)

    def finish(self) -> None:
        """Directory mtimes, deepest first (setting one does not change its parent's)."""
        for parts, mtime in reversed(self.dir_times):
            try:
                fd = self.open_dir(parts, create=False)
            except (OSError, LayerError):
                continue  # replaced or removed by a later entry
            try:
                os.utime(fd, ns=_ns(mtime))
            finally:
                os.close(fd)


def _extract(blob: Path, root: Path) -> str:
    """Extract `blob` under `root`; returns the sha256 of its uncompressed stream."""
    with open(blob, "rb") as f:
        reader = _HashingReader(decompressed(f))
        ex = _Extractor(root)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tf:  # type: ignore[call-overload]
                for ti in tf:
                    ex.add(tf, ti)
            reader.drain()
            ex.finish()
        except LayerError:
            raise
        except Exception as e:  # noqa: BLE001 - tar, gzip, zstd and disk errors alike refuse the layer
            raise LayerError(f"cannot unpack layer {blob.name}: {e}") from e
        finally:
            ex.close()
    return "sha256:" + reader.hash.hexdigest()


def unpack_layer(blob: Path, dest: Path, diff_id: str | None = None) -> str:
    """Extract `blob` into `dest` (which must not exist yet); returns the diff_id.

    With `diff_id`, content whose digest differs is removed and LayerError raised: `dest`
    is only ever made from verified content. Every failure removes what was extracted."""
    partial = dest.with_name(dest.name + ".partial")
    if partial.is_symlink() or partial.is_file():
        partial.unlink()
    elif partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        got = _extract(blob, partial)
        if diff_id is not None and got != diff_id:
            raise LayerError(f"layer {blob.name}: diff_id mismatch: config says {diff_id}, content is {got}")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.rename(partial, dest)
    return got
