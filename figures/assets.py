"""`make assets`: copy a visualize run's figures into assets/, the large ones left out, with a figures.json of them."""
# python -m figures.assets BUILD_DIR ASSETS_DIR  (the Makefile's `assets` target runs it after --visualize)
import os
import shutil
import sys

import utils
from figures.output import INDEX_FILE

# Written by the figures stage but not committed (too large); the README shows their smaller twins instead.
# .gitignore lists them too, so a copy left in assets/ by hand stays out of git.
LEFT_OUT = {
    "random_walk.gif": "random_walk.mp4 is committed instead",
    "option4_merged.gif": "option4_merged.mp4 is committed instead",
    "pool_sheet.png": "a 2.4 MB contact sheet for --arith_indices",
    "training_progression.mp4": "training_progression.gif is committed instead",
}
EXTRA_FILES = ("sample_grid.png",)  # sample mode's grid (what `make demo` writes), shown at the top of the README


def copy_file(src, dst):
    with open(src, "rb") as f:
        utils.atomic_write(dst, lambda out: shutil.copyfileobj(f, out))


def publish(build_dir, assets_dir):
    """Copy what build_dir's figures.json lists (less LEFT_OUT) and EXTRA_FILES into assets_dir; write its
    figures.json with only the files now in assets_dir. Figures the build skipped keep their committed files and
    entries. Returns {"copied": [...], "kept": [...], "left_out": [...]} (file names)."""
    index_path = os.path.join(build_dir, INDEX_FILE)
    if not os.path.isfile(index_path):
        raise FileNotFoundError(f"no {index_path}: run `python main.py --visualize --sample_dir {build_dir}` first")
    build = utils.read_json(index_path)
    old_path = os.path.join(assets_dir, INDEX_FILE)
    old = utils.read_json(old_path) if os.path.isfile(old_path) else {}
    copied, left_out = [], []
    for e in build.get("figures", []):
        if e["file"] in LEFT_OUT:
            left_out.append(e["file"])
            continue
        src = os.path.join(build_dir, e["file"])
        if not os.path.isfile(src):
            print(f"warning: {index_path} lists {e['file']}, which is not there; not copied", file=sys.stderr)
            continue
        copy_file(src, os.path.join(assets_dir, e["file"]))
        copied.append(e)
    for name in EXTRA_FILES:
        if os.path.isfile(os.path.join(build_dir, name)):
            copy_file(os.path.join(build_dir, name), os.path.join(assets_dir, name))
    redrawn = {e["file"] for e in copied}
    kept = [e for e in old.get("figures", []) if e["file"] not in redrawn and e["file"] not in LEFT_OUT and
            os.path.isfile(os.path.join(assets_dir, e["file"]))]
    why = {s["figure"]: s["reason"] for s in build.get("skipped", [])}
    for e in kept:
        print(f"kept the committed {e['file']}: not redrawn ({why.get(e.get('figure'), 'not in this build')})")
    shown = {e.get("figure") for e in copied + kept}
    skipped = [s for s in build.get("skipped", []) if s["figure"] not in shown]
    meta = {k: v for k, v in build.items() if k not in ("figures", "skipped")}
    utils.write_json(old_path, {**meta, "figures": copied + kept, "skipped": skipped})
    print(f"{assets_dir}: {len(copied)} figures redrawn, {len(kept)} kept as committed, {len(left_out)} left out "
          f"(large: {', '.join(left_out) or 'none'}); index {old_path}")
    return {"copied": [e["file"] for e in copied], "kept": [e["file"] for e in kept], "left_out": left_out}


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: python -m figures.assets BUILD_DIR ASSETS_DIR")
    try:
        publish(argv[1], argv[2])
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main(sys.argv)
