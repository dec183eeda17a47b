"""Step 2: detect, align and crop faces in a folder of photos with dlib, on all cores, with a resumable manifest."""
import hashlib
import os
import time
from collections import Counter

import cv2
import numpy as np
from tqdm import tqdm

import utils
from preprocess import align, dlib_models, manifest
from preprocess.images import BadImage, load_rgb
from preprocess.inputs import NOT_AN_IMAGE, list_inputs
from preprocess.workers import pool_results

MANIFEST = "manifest.jsonl"
CONFIG = "faces_config.json"
SUMMARY = "summary.json"
# Options that change what a crop looks like: a resumed run must use the same ones, or the folder would mix styles.
CROP_OPTIONS = ("align", "size", "padding", "landmarks", "format", "detector")


def default_options(**overrides):
    """The faces step's options (the CLI flags) as a dict; see preprocess/__main__.py for their meaning."""
    opts = dict(detector="hog", upsample=1, upsample_fallback=True, align="openface", landmarks="outer_eyes_and_nose", size=128,
                padding=None, format="jpg", quality=95, faces="largest", min_face_size=40, min_blur=0.0,
                max_outside=0.35, grayscale="keep", dup_distance=24, max_pixels=40_000_000, max_detect_side=1024,
                workers=os.cpu_count() or 1, follow_symlinks=False, progress=True)
    unknown = set(overrides) - set(opts)
    if unknown:
        raise ValueError(f"unknown faces options: {sorted(unknown)}")
    opts.update(overrides)
    if opts["align"] not in ("openface", "chip"):
        raise ValueError(f"--align must be openface or chip, not {opts['align']!r}")
    if opts["padding"] is None:
        # openface 0.1: its template fills the middle ~108 px of 128, the face that --crop 108 takes (as CelebA);
        # chip 0.25: dlib's own default.
        opts["padding"] = 0.1 if opts["align"] == "openface" else 0.25
    if opts["landmarks"] not in align.LANDMARK_SETS:
        raise ValueError(f"--landmarks must be one of {sorted(align.LANDMARK_SETS)}")
    if opts["faces"] not in ("largest", "all", "single"):
        raise ValueError(f"--faces must be largest, all or single, not {opts['faces']!r}")
    if opts["grayscale"] not in ("keep", "drop"):
        raise ValueError(f"--grayscale must be keep or drop, not {opts['grayscale']!r}")
    if opts["format"] not in ("jpg", "png"):
        raise ValueError(f"--format must be jpg or png, not {opts['format']!r}")
    if opts["detector"] not in ("hog", "cnn"):
        raise ValueError(f"--detector must be hog or cnn, not {opts['detector']!r}")
    if not 8 <= opts["size"] <= 4096:
        raise ValueError(f"--size must be between 8 and 4096 pixels, not {opts['size']}")
    if opts["padding"] < 0 or opts["upsample"] < 0 or opts["workers"] < 1:
        raise ValueError("--padding and --upsample must be >= 0 and --workers >= 1")
    return opts


# ---------------------------------------------------------------- one image (runs in a worker process)

def blur_score(crop_rgb):
    """Variance of the Laplacian of the crop at 128 px: low means blurry (comparable across --size)."""
    gray = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def phash(crop_rgb):
    """256-bit perceptual hash, as hex: the 16x16 lowest DCT frequencies of the 64x64 grayscale crop vs. their median.
    Aligned faces all look alike to a 64-bit hash (different people came within 4 bits); at 256 bits different
    people stay > 60 bits apart while a re-encoded, rescaled or brightened copy stays within ~15."""
    gray = cv2.resize(cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY), (64, 64), interpolation=cv2.INTER_AREA)
    low = cv2.dct(np.float32(gray))[:16, :16].ravel()
    bits = np.packbits(low > np.median(low[1:]))
    return bits.tobytes().hex()


def crop_name(rel, index, fmt):
    """A flat, unique, readable file name for face `index` of the input at relative path `rel`. Only letters,
    digits, "_", "-" and "." are kept of the input's name (a newline, a tab, "$(...)" or a quote would bite a
    shell loop over the crops), never first a "-" (read as an option) or "." (hidden); the hash of the whole
    path keeps names unique."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.splitext(os.path.basename(rel))[0])
    stem = stem.lstrip("-.")[:60] or "input"
    while len(stem.encode("utf-8", "surrogateescape")) > 120:  # file names are at most 255 bytes
        stem = stem[:-1]
    tag = hashlib.sha1(rel.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{stem}_{tag}_{index}.{fmt}"


def encode(crop_rgb, fmt, quality):
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpg" else []
    ok, buf = cv2.imencode("." + fmt, cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"cannot encode a {fmt} crop")
    return buf.tobytes()


def align_face(image_rgb, rect, opts):
    """(crop, transform, 68 landmarks) for the face in rect, aligned as opts['align'] says."""
    points68 = dlib_models.landmarks(image_rgb, rect, 68)
    if opts["align"] == "openface":
        matrix = align.openface_transform(points68, opts["size"], opts["padding"], opts["landmarks"])
    else:
        points5 = dlib_models.landmarks(image_rgb, rect, 5)
        matrix = align.chip_transform(rect, points5, opts["size"], opts["padding"])
    return align.warp(image_rgb, matrix, opts["size"]), matrix, points68


def detect(image_rgb, opts):
    """(face boxes as [(dlib.rectangle in full-image pixels, score)], upsample used). Big photos are searched at
    --max_detect_side. When --upsample finds nothing, the other levels get a try: HOG at one level misses faces
    another finds (~2% of faces_unaligned/ at upsample 1 are found at 0 or 2)."""
    import dlib
    h, w = image_rgb.shape[:2]
    scale = min(1.0, opts["max_detect_side"] / max(h, w))
    small = image_rgb if scale == 1.0 else cv2.resize(image_rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                      interpolation=cv2.INTER_AREA)
    levels = [opts["upsample"]]
    if opts["upsample_fallback"]:
        levels += [u for u in range(opts["upsample"] + 2) if u != opts["upsample"]
                   and max(small.shape[:2]) * 2 ** u <= 2048]  # no 4096 px searches: seconds each
    for upsample in levels:
        found = dlib_models.detect_faces(small, upsample, opts["detector"])
        if found:
            break
    boxes = [(dlib.rectangle(int(r.left() / scale), int(r.top() / scale), int(r.right() / scale),
                             int(r.bottom() / scale)), float(s)) for r, s in found]
    return boxes, upsample


def process_image(path, rel, opts):
    """Everything about one input: (manifest record, [(crop file name, encoded bytes)]). Never raises."""
    record = {"input": rel, "faces": [], "status": "ok", "reason": None}
    crops = []
    try:
        image, info = load_rgb(path, opts["max_pixels"])
        record.update(width=info["width"], height=info["height"], mode=info["mode"], format=info["format"],
                      exif_orientation=info["exif_orientation"], grayscale=info["grayscale"], frames=info["frames"])
        if info["grayscale"] and opts["grayscale"] == "drop":
            record.update(status="skipped", reason="grayscale")
            return record, crops
        found, record["upsample"] = detect(image, opts)
        if not found:
            record.update(status="skipped", reason="no face")
            return record, crops
        # Largest face first: openface's getLargestFaceBoundingBox picks by area.
        found.sort(key=lambda rs: -rs[0].width() * rs[0].height())
        for i, (rect, score) in enumerate(found):
            face = {"index": i, "box": [rect.left(), rect.top(), rect.right(), rect.bottom()],
                    "score": round(score, 4), "crop": None, "reason": None}
            record["faces"].append(face)
            if opts["faces"] == "single" and len(found) > 1:
                face["reason"] = "several faces"
                continue
            if opts["faces"] == "largest" and i > 0:
                face["reason"] = "not the largest face"
                continue
            side = min(rect.width(), rect.height())
            if side < opts["min_face_size"]:
                face["reason"] = "face too small"
                continue
            crop, matrix, points68 = align_face(image, rect, opts)
            face["landmarks"] = np.round(points68, 1).tolist()
            face["transform"] = np.round(matrix, 5).tolist()
            face["outside"] = round(align.outside_fraction(matrix, opts["size"], image.shape), 3)
            face["blur"] = round(blur_score(crop), 1)
            face["phash"] = phash(crop)
            if face["outside"] > opts["max_outside"]:
                face["reason"] = "crop outside the photo"
            elif face["blur"] < opts["min_blur"]:
                face["reason"] = "blurry"
            else:
                face["crop"] = crop_name(rel, i, opts["format"])
                crops.append((face["crop"], encode(crop, opts["format"], opts["quality"])))
    except BadImage as e:
        record.update(status="skipped", reason=str(e))
    except Exception as e:  # a photo must never stop the run: record what went wrong and go on
        record.update(status="skipped", reason=f"error: {type(e).__name__}: {e}"[:300])
        crops = []
        for face in record["faces"]:  # names given before the error have no bytes to write
            face["crop"] = None
    return record, crops


_WORKER_OPTS = None


def _init_worker(opts):
    """Per process: one OpenCV thread (the pool is the parallelism) and dlib's models loaded once."""
    global _WORKER_OPTS
    _WORKER_OPTS = opts
    cv2.setNumThreads(1)
    dlib_models.shape_predictor(68)
    if opts["align"] == "chip":
        dlib_models.shape_predictor(5)


def _work(item):
    path, rel = item
    return process_image(path, rel, _WORKER_OPTS)


# ---------------------------------------------------------------- the run (main process)

def read_manifest(path):
    """The manifest's records by input; the last record of an input wins."""
    return {r["input"]: r for r in manifest.read(path) if isinstance(r.get("input"), str)}


def check_config(out, opts):
    """Refuse to resume into a folder whose crops were made with different crop options."""
    path = os.path.join(out, CONFIG)
    wanted = {k: opts[k] for k in CROP_OPTIONS}
    if os.path.exists(path):
        have = utils.read_json(path)
        diff = {k: (have.get(k), v) for k, v in wanted.items() if have.get(k) != v}
        if diff:
            shown = ", ".join(f"--{k} was {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"{out} holds crops made with other options ({shown}): use those options "
                             "to resume, or a new --out folder")
    else:
        utils.write_json(path, wanted)


class NearDuplicates:
    """Perceptual hashes of the kept crops; a new crop within dup_distance bits of one of them is a near-duplicate."""

    def __init__(self, dup_distance):
        self.dup_distance = dup_distance
        self.hashes = np.zeros((0, 32), np.uint8)
        self.names = []

    def match(self, hex_hash):
        if self.dup_distance < 0 or not len(self.hashes):
            return None
        dist = np.bitwise_count(self.hashes[:len(self.names)] ^ np.frombuffer(bytes.fromhex(hex_hash), np.uint8))
        dist = dist.sum(axis=1, dtype=np.int64)
        best = int(np.argmin(dist))
        return self.names[best] if dist[best] <= self.dup_distance else None

    def add(self, hex_hash, name):
        if len(self.names) == len(self.hashes):  # grow by doubling: appends stay cheap for 100k crops
            self.hashes = np.concatenate([self.hashes, np.zeros((max(1024, len(self.hashes)), 32), np.uint8)])
        self.hashes[len(self.names)] = np.frombuffer(bytes.fromhex(hex_hash), np.uint8)
        self.names.append(name)


def summarize(records, seconds=None, processed=None):
    """Counts over all manifest records: entries, inputs (all but the files without an image extension), images
    with faces, crops, skips and rejections by reason."""
    skipped, rejected = Counter(), Counter()
    faces = kept = with_faces = ignored = 0
    for rec in records:
        if rec["reason"] == NOT_AN_IMAGE:
            ignored += 1
        elif rec["status"] != "ok":
            skipped[rec["reason"]] += 1
        faces += len(rec["faces"])
        with_faces += bool(rec["faces"])
        for face in rec["faces"]:
            kept += face.get("crop") is not None
            if face.get("reason"):
                rejected[face["reason"]] += 1
    summary = {"entries": len(records), "inputs": len(records) - ignored, "images_with_faces": with_faces,
               "faces_found": faces, "crops_kept": kept, "images_skipped": dict(skipped.most_common()),
               "faces_rejected": dict(rejected.most_common()), "ignored_non_image_files": ignored}
    if seconds is not None:
        summary.update(processed_this_run=processed, seconds=round(seconds, 2),
                       images_per_second=round(processed / seconds, 2) if seconds > 0 else None)
    return summary


def format_summary(s):
    lines = [f"inputs {s['inputs']}, with faces {s['images_with_faces']}, faces found {s['faces_found']}, "
             f"crops kept {s['crops_kept']}"]
    if s.get("processed_this_run") is not None:
        lines.append(f"this run: {s['processed_this_run']} images in {s['seconds']} s "
                     f"({s['images_per_second']} images/s)")
    if s["ignored_non_image_files"]:
        lines.append(f"ignored {s['ignored_non_image_files']} files without an image extension")
    for title, key in (("images skipped", "images_skipped"), ("faces rejected", "faces_rejected")):
        if s[key]:
            lines.append(title + ":")
            lines += [f"  {n:7d}  {reason}" for reason, n in s[key].items()]
    return "\n".join(lines)


def source_prefixes(sources):
    """{folder: prefix of its inputs' names in the manifest}: none for one folder, its name for several."""
    if len(sources) == 1:
        return {sources[0]: ""}
    names = [os.path.basename(os.path.normpath(s)) for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"input folders must have different names to share one --out: {', '.join(sources)}")
    return dict(zip(sources, names))


def run(src, out, **options):
    """Process every photo under src (a folder, or a list of folders) into aligned crops in out; returns the
    summary dict. With several folders, each input is recorded as <folder name>/<relative path>."""
    opts = default_options(**options)
    sources = [src] if isinstance(src, str) else list(src)
    if not sources:
        raise ValueError("name at least one input folder")
    for s in sources:
        if not os.path.isdir(s):
            raise FileNotFoundError(f"input folder {s} does not exist")
        if os.path.realpath(s) == os.path.realpath(out):
            raise ValueError("--out must differ from the input folder (the crops would be read back as inputs)")
    prefixes = source_prefixes(sources)
    # Missing model files fail here with a clear message, not as every worker dying at start-up.
    dlib_models.model_path("landmarks68")
    if opts["align"] == "chip":
        dlib_models.model_path("landmarks5")
    if opts["detector"] == "cnn":
        dlib_models.model_path("cnn")
    os.makedirs(out, exist_ok=True)
    check_config(out, opts)
    manifest_path = os.path.join(out, MANIFEST)
    done = read_manifest(manifest_path)
    entries = [e for s, prefix in prefixes.items() for e in list_inputs(s, out, prefix, opts["follow_symlinks"])]
    # Every entry gets a line: photos once read (again when a rejected one has changed since: a truncated
    # download completed later), and the rest with the reason it is not read (again when that reason changes).
    todo, listed = [], []
    for path, rel, stamp, reason in entries:
        old = done.get(rel)
        if reason is not None:
            if old is None or old.get("reason") != reason:
                listed.append({"input": rel, "faces": [], "status": "skipped", "reason": reason, **(stamp or {})})
        elif old is None or (old["status"] != "ok" and any(old.get(k) != v for k, v in stamp.items())):
            todo.append((path, rel, stamp))

    dups = NearDuplicates(opts["dup_distance"])
    for rec in done.values():
        for face in rec["faces"]:
            if face.get("crop") and face.get("phash"):
                dups.add(face["phash"], face["crop"])

    start = time.time()
    kept = 0
    worker_opts = {k: v for k, v in opts.items() if k != "progress"}
    with manifest.open_for_append(manifest_path) as manifest_file, \
            tqdm(total=len(entries), initial=len(entries) - len(todo), unit="img", disable=not opts["progress"],
                 desc="faces") as bar:
        for record in listed:
            manifest.append(manifest_file, record)
            done[record["input"]] = record
        work = [(path, rel) for path, rel, _ in todo]
        stamps = {rel: stamp for _, rel, stamp in todo}
        if opts["workers"] == 1 or len(work) <= 1:
            if work:
                _init_worker(worker_opts)
            results = ((item, _work(item)) for item in work)
        else:
            results = pool_results(work, opts["workers"], _work, _init_worker, (worker_opts,))
        try:
            for (path, rel), result in results:
                if result is None:
                    result = ({"input": rel, "faces": [], "status": "skipped",
                               "reason": "crashed a worker process (dlib or the image decoder)"}, [])
                record, crops = result
                data = dict(crops)
                for face in record["faces"]:
                    if face.get("crop") is None:
                        continue
                    twin = dups.match(face["phash"])
                    if twin is not None:
                        face.update(reason="near-duplicate", duplicate_of=twin, crop=None)
                        continue
                    utils.atomic_write(os.path.join(out, face["crop"]), lambda f, b=data[face["crop"]]: f.write(b))
                    dups.add(face["phash"], face["crop"])
                    kept += 1
                if record["status"] == "ok" and not any(f.get("crop") for f in record["faces"]):
                    record.update(status="skipped", reason="no face kept")
                record.update(stamps[rel])  # as listed before reading: a change after that is seen next run
                # The crop files exist before their manifest line: a crash in between only redoes this image.
                manifest.append(manifest_file, record)
                done[record["input"]] = record
                bar.update(1)
                bar.set_postfix(kept=kept, refresh=False)
        finally:
            results.close()  # stops the pool (queued photos are cancelled) when the loop ends early
    summary = summarize(list(done.values()), time.time() - start, len(todo))
    utils.write_json(os.path.join(out, SUMMARY), summary)
    return summary
