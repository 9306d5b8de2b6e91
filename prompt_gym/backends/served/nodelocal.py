"""Keep SQLite off network file systems: a replica's ``cache_dir`` must be node-local.

Each replica of a served backend opens the preset's disk cache (SQLite) in its ``cache_dir``
on the node it runs on. SQLite's locking is not reliable on NFS, SMB and other network file
systems (concurrent writers can corrupt the file), so a replica refuses such a directory.
"""

from __future__ import annotations

import os
from pathlib import Path

NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "fuse.sshfs", "afs", "lustre", "gpfs"}
    | {"ceph", "fuse.ceph", "glusterfs", "fuse.glusterfs", "9p", "fuse.s3fs", "fuse.gcsfuse"}
)
"""File system types (as ``/proc/mounts`` names them) that are not node-local."""


def mount_type(path: str, mounts: str | None = None) -> str | None:
    """The file system type of the mount that holds ``path`` (``None`` if unknown).

    Args:
        path: Any path (it need not exist yet: its nearest existing parent is used).
        mounts: The text of ``/proc/mounts``; read from the system when ``None`` (Linux).

    >>> mount_type("/data/cache", "/dev/sda1 / ext4 rw 0 0\\nhost:/x /data nfs4 rw 0 0\\n")
    'nfs4'
    """
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    target = Path(os.path.abspath(path))
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == Path(point) or Path(point) in target.parents
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def check_node_local(cache_dir: str | None, mounts: str | None = None) -> None:
    """Raise if a replica's ``cache_dir`` is on a network file system.

    Raises:
        ValueError: Naming the directory and its file system type.

    >>> check_node_local("/data/c", "host:/x /data nfs rw 0 0\\n")
    Traceback (most recent call last):
    ...
    ValueError: cache_dir '/data/c' is on a network file system (nfs); SQLite must not be: give each replica a node-local directory (local disk or NVMe, e.g. /tmp/prompt-gym-cache)
    """
    if cache_dir is None:
        return
    kind = mount_type(str(cache_dir), mounts)
    if kind in NETWORK_FS:
        raise ValueError(
            f"cache_dir {str(cache_dir)!r} is on a network file system ({kind}); SQLite must "
            "not be: give each replica a node-local directory (local disk or NVMe, e.g. "
            "/tmp/prompt-gym-cache)"
        )
