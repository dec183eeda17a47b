"""JSONL manifests of the preprocess steps: read them back after a crash, append one line per input."""
import json
import os


def read(path):
    """The records of a JSONL manifest in order; a line cut off by a crash (or otherwise unreadable) is dropped."""
    records = []
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    records.append(rec)
    return records


def open_for_append(path):
    """Open the manifest to append; a half line left by a crash is ended first so the next record stays whole."""
    if os.path.exists(path) and os.path.getsize(path):
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        if cut:
            with open(path, "a", encoding="utf-8") as f:
                f.write("\n")
    return open(path, "a", encoding="utf-8")


def append(f, record):
    """One record, one line, flushed: what is in the file survives a crash of this process."""
    f.write(json.dumps(record) + "\n")
    f.flush()
