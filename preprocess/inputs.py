"""Every entry under an input folder of the faces step, hidden ones included: the photo files to read, and
everything else with the reason it is not read (symlinks that are broken, loop or leave the folder, FIFOs...)."""
import errno
import os
import stat

from preprocess.images import IMAGE_EXTENSIONS

NOT_AN_IMAGE = "not an image file extension"
SPECIAL_FILES = ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                 (stat.S_ISBLK, "block device"))


def stamp(st):
    """What tells a changed file from the one already judged: size and modification time (ns)."""
    return {"file_size": st.st_size, "mtime_ns": st.st_mtime_ns}


def inside(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def resolve_link(path, root_real, follow_symlinks):
    """(real path, None) for a symlink that may be followed, else (None, why not)."""
    try:
        target = os.path.realpath(path, strict=True)
    except FileNotFoundError:
        return None, f"broken symlink (to {os.readlink(path)[:200]!r})"
    except OSError as e:  # ELOOP, or a component that cannot be read
        if e.errno == errno.ELOOP:
            return None, "symlink loop"
        return None, f"unreadable symlink: {e.strerror or e}"
    if not follow_symlinks and not inside(target, root_real):
        return None, f"symlink to {target[:200]!r}, outside the input folder (--follow_symlinks to read it)"
    return target, None


def list_inputs(src, out, prefix="", follow_symlinks=False):
    """Every entry under src, in os.walk's order (a folder's files sorted, then its sub-folders): a list of
    (path, name in the manifest, stamp, reason), reason None for a photo file to read. Nothing is opened: a FIFO
    or a device is judged by its type, and the --out folder, when under src, is not read."""
    root_real, out_real = os.path.realpath(src), os.path.realpath(out)
    entries, visited = [], {root_real}
    stack = [src]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as e:
            entries.append((folder, os.path.join(prefix, os.path.relpath(folder, src)), None,
                            f"unreadable folder: {e.strerror or e}"))
            continue
        subfolders = []
        for entry in children:
            path = entry.path
            name = os.path.join(prefix, os.path.relpath(path, src))
            try:
                st, real = os.lstat(path), None
                is_link = stat.S_ISLNK(st.st_mode)
                if is_link:
                    real, reason = resolve_link(path, root_real, follow_symlinks)
                    if reason:
                        entries.append((path, name, None, reason))
                        continue
                    st = os.stat(path)
                elif stat.S_ISDIR(st.st_mode):
                    real = os.path.realpath(path)
            except OSError as e:
                entries.append((path, name, None, f"unreadable: {e.strerror or e}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                if real == out_real:
                    entries.append((path, name, None, "the --out folder (crops are not inputs)"))
                    continue
                if real in visited or (is_link and inside(real, root_real)):
                    # A link to a folder of the input (or to one already read) would read it twice, or forever.
                    entries.append((path, name, None, f"symlink to a folder read elsewhere ({real[:200]!r})"))
                    continue
                visited.add(real)
                subfolders.append(path)
            elif stat.S_ISREG(st.st_mode):
                if is_link and inside(real, root_real):
                    entries.append((path, name, None, "symlink to a file read under its own name"))
                elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                    entries.append((path, name, stamp(st), None))
                else:
                    entries.append((path, name, stamp(st), NOT_AN_IMAGE))
            else:
                kind = next((k for test, k in SPECIAL_FILES if test(st.st_mode)), "special file")
                entries.append((path, name, None, f"not a regular file ({kind})"))
        stack.extend(reversed(subfolders))
    return entries
