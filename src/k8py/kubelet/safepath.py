"""Confined file system access for volumes: nothing the kubelet writes or mounts leaves its volume.

Paths are walked one component at a time relative to an open directory (`dir_fd`), each
directory opened with O_NOFOLLOW, so a symlink planted by a container (or a hostile item
path that slipped past validation) cannot lead the kubelet, which runs as root, outside the
volume. `check_path` is the atomic writer's own check (Kubernetes' AtomicWriter.validatePath);
`open_subpath` + `bind_subpath` are the subPath preparation of CVE-2017-1002101's fix: symlinks
inside the volume are followed only while they stay inside it, every component is re-opened
without following symlinks, and the opened file is bind-mounted through /proc/self/fd onto a
kubelet-owned path, which is what the runtime mounts (a later swap of a component cannot redirect it).
"""

from __future__ import annotations

import ctypes
import os
import posixpath
import stat
from pathlib import Path

from k8py.kubelet.errors import ContainerConfigError, VolumeError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_PATH = 4096
MAX_NAME = 255


def check_path(p: str) -> str:
    """The cleaned payload path, or VolumeError worded as Kubernetes' atomic writer."""
    if not p:
        raise VolumeError(f'invalid path: must not be empty: "{p}"')
    if p.startswith("/"):
        raise VolumeError(f"invalid path: must be relative path: {p}")
    if len(p) > MAX_PATH:
        raise VolumeError(f"invalid path: must be less than or equal to {MAX_PATH} characters")
    items = p.split("/")
    if ".." in items:
        raise VolumeError(f"invalid path: must not contain '..': {p}")
    if any(len(i) > MAX_NAME for i in items):
        raise VolumeError(f"invalid path: filenames must be less than or equal to {MAX_NAME} characters")
    if items[0].startswith("..") and len(items[0]) > 2:
        raise VolumeError(f"invalid path: must not start with '..': {p}")
    clean = posixpath.normpath(p)
    if clean in (".", "") or clean.startswith(".."):
        raise VolumeError(f"invalid path: must name a file inside the volume: {p}")
    return clean


def open_dir(base_fd: int, parts: list[str], create: bool = False, mode: int = 0o755) -> int:
    """An fd of base/parts..., never following a symlink (ELOOP/ENOTDIR instead); creates missing dirs."""
    fd = os.dup(base_fd)
    try:
        for name in parts:
            if name in ("", ".", ".."):
                raise VolumeError(f"invalid path component {name!r}")
            if create:
                try:
                    os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    pass
            nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_file(root_fd: int, rel: str, content: bytes, mode: int) -> None:
    """Create root/rel (a fresh file: O_EXCL, O_NOFOLLOW) with its parents, all beneath root_fd."""
    parts = rel.split("/")
    pfd = open_dir(root_fd, parts[:-1], create=True)
    try:
        fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=pfd)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    finally:
        os.close(pfd)


def read_tree(root_fd: int) -> dict[str, tuple[bytes, int]] | None:
    """Every regular file beneath root_fd -> (content, mode); None if anything else is there."""
    out: dict[str, tuple[bytes, int]] = {}
    for dirpath, _dirs, files, dfd in os.fwalk(".", dir_fd=root_fd, follow_symlinks=False):
        for f in files:
            st = os.stat(f, dir_fd=dfd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                return None
            fd = os.open(f, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            with os.fdopen(fd, "rb") as fh:
                out[posixpath.normpath(posixpath.join(dirpath, f))] = (fh.read(), st.st_mode & 0o777)
    return out


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def resolve_subpath(volume: str, sub: str, mount_name: str, container: str) -> str:
    """The host path of `sub` inside `volume` (see `open_subpath`)."""
    fd, full = open_subpath(volume, sub, mount_name, container)
    os.close(fd)
    return full


def open_subpath(volume: str, sub: str, mount_name: str, container: str) -> tuple[int, str]:
    """An O_PATH fd of `sub` inside `volume` (created as a directory if missing) and its host path;
    refused (ContainerConfigError, Kubernetes' message) if it resolves outside the volume or a
    component is swapped for a symlink while it is opened."""
    refused = ContainerConfigError(f'failed to prepare subPath for volumeMount "{mount_name}" of container '
                                   f'"{container}"')
    base = os.path.realpath(volume)
    full = os.path.realpath(os.path.join(base, sub))
    if sub.startswith("/") or ".." in sub.split("/") or not _within(full, base):
        raise refused
    rel = os.path.relpath(full, base)
    parts = [] if rel == "." else rel.split("/")
    try:
        bfd = os.open(base, DIR_FLAGS)
    except OSError as e:
        raise refused from e
    try:
        pfd = open_dir(bfd, parts[:-1], create=True)
        try:
            if parts and lstat_at(pfd, parts[-1]) is None:
                os.mkdir(parts[-1], 0o755, dir_fd=pfd)
            fd = os.open(parts[-1] if parts else ".", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        finally:
            os.close(pfd)
    except (OSError, VolumeError) as e:
        raise refused from e
    finally:
        os.close(bfd)
    if stat.S_ISLNK(os.fstat(fd).st_mode):
        os.close(fd)
        raise refused
    return fd, full


_libc = ctypes.CDLL(None, use_errno=True)
MS_BIND = 4096
MNT_DETACH = 2


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def bind_subpath(fd: int, target: Path) -> None:
    """Bind-mount what `fd` names (not a path a container could swap: /proc/self/fd) onto target,
    a kubelet-owned file or directory; a mount left by an earlier start is replaced."""
    if _mounted(str(target)):
        _libc.umount2(str(target).encode(), MNT_DETACH)
    target.parent.mkdir(parents=True, exist_ok=True)
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        target.mkdir(exist_ok=True)
    else:
        target.touch(exist_ok=True)
    if _libc.mount(f"/proc/self/fd/{fd}".encode(), str(target).encode(), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind subPath on {target}: {os.strerror(err)}")
