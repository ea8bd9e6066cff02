#!/usr/bin/python3
"""crashfs.py BACKING MOUNTPOINT [SYNC_SECONDS]: a FUSE file system for
power-cut tests.

Names (create, mkdir, unlink, rename) and attributes (chmod, chown,
utimens) reach BACKING at once, as a journalling file system's metadata
would.  File contents stay in this process's memory until an fsync or
fdatasync of the file writes its whole content to BACKING; close() writes
nothing.  So `kill -9` of this process is a power cut: what was not synced
is gone, and BACKING holds exactly what the disk would hold after it.
Each sync takes SYNC_SECONDS (default 0) before it confirms, as a slow
disk's flush would, which widens the moments at which a cut finds data
written but not yet confirmed.  While a file BACKING.fail-syncs exists,
every sync fails with EIO (a disk that cannot write).

Single-threaded (`-s`), mounted with allow_other and default_permissions
so the kernel checks modes for the unprivileged processes that use it.
Used by test_powercut.py; it needs python3-fusepy (and libfuse2).
"""
import errno
import os
import sys
import time

from fusepy import FUSE, FuseOSError, Operations, fuse_get_context

SIDE = ".crashfs-sync"          # a sync in progress (see fsync)
FAIL = ".fail-syncs"            # BACKING + FAIL exists: every sync fails with EIO


class CrashFS(Operations):
    def __init__(self, root, sync_seconds=0.0):
        self.root = root
        self.sync_seconds = sync_seconds
        self.data = {}          # path -> bytearray: the file as written, not yet synced

    def _p(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _load(self, path):
        d = self.data.get(path)
        if d is None:
            with open(self._p(path), "rb") as f:
                d = bytearray(f.read())
            self.data[path] = d
        return d

    def _own(self, path):
        uid, gid, _ = fuse_get_context()
        os.chown(self._p(path), uid, gid)

    # names and attributes: durable at once
    def getattr(self, path, fh=None):
        st = os.lstat(self._p(path))
        attrs = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid",
                                              "st_atime", "st_mtime", "st_ctime")}
        attrs["st_size"] = len(self.data[path]) if path in self.data else st.st_size
        return attrs

    def readdir(self, path, fh):
        return [".", ".."] + [n for n in os.listdir(self._p(path)) if not n.endswith(SIDE)]

    def mkdir(self, path, mode):
        os.mkdir(self._p(path), mode)
        self._own(path)

    def rmdir(self, path):
        os.rmdir(self._p(path))

    def chmod(self, path, mode):
        os.chmod(self._p(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._p(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._p(path), times)

    def unlink(self, path):
        os.unlink(self._p(path))
        self.data.pop(path, None)

    def rename(self, old, new):
        os.rename(self._p(old), self._p(new))
        if old in self.data:
            self.data[new] = self.data.pop(old)
        else:
            self.data.pop(new, None)

    def statfs(self, path):
        sv = os.statvfs(self.root)
        return {k: getattr(sv, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize",
                                             "f_favail", "f_ffree", "f_files", "f_flag",
                                             "f_frsize", "f_namemax")}

    # contents: in memory until synced
    def create(self, path, mode, fi=None):
        os.close(os.open(self._p(path), os.O_WRONLY | os.O_CREAT, mode))
        self._own(path)
        self.data[path] = bytearray()
        return 0

    def open(self, path, flags):
        if flags & os.O_TRUNC:
            self.data[path] = bytearray()
        return 0

    def read(self, path, size, offset, fh):
        return bytes(self._load(path)[offset:offset + size])

    def write(self, path, buf, offset, fh):
        d = self._load(path)
        if offset > len(d):
            d.extend(bytes(offset - len(d)))
        d[offset:offset + len(buf)] = buf
        return len(buf)

    def truncate(self, path, length, fh=None):
        d = self._load(path)
        if length < len(d):
            del d[length:]
        else:
            d.extend(bytes(length - len(d)))

    def fsync(self, path, datasync, fh):
        # All or nothing, as a disk keeps what an earlier sync confirmed:
        # the new content goes to a side file that replaces the old one.
        if self.sync_seconds > 0:
            time.sleep(self.sync_seconds)
        if os.path.exists(self.root + FAIL):
            raise FuseOSError(errno.EIO)
        d = self.data.get(path)
        if d is not None:
            p = self._p(path)
            st = os.lstat(p)
            tmp = p + SIDE
            with open(tmp, "wb") as f:
                f.write(d)
                os.fchown(f.fileno(), st.st_uid, st.st_gid)
                os.fchmod(f.fileno(), st.st_mode & 0o7777)
            os.replace(tmp, p)
        return 0

    def fsyncdir(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0


def main():
    if len(sys.argv) not in (3, 4):
        sys.stderr.write("usage: crashfs.py BACKING MOUNTPOINT [SYNC_SECONDS]\n")
        return 2
    delay = float(sys.argv[3]) if len(sys.argv) == 4 else 0.0
    FUSE(CrashFS(os.path.abspath(sys.argv[1]), delay), sys.argv[2], foreground=True,
         nothreads=True, allow_other=True, default_permissions=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
