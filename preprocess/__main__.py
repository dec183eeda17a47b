"""Command line of the preprocess steps: `python -m preprocess crawl|faces|download ...`."""
import argparse
import os
import sys

from preprocess import download


def add_faces_parser(sub):
    p = sub.add_parser("faces", help="detect, align and crop faces in a folder of photos",
                       description="Detect faces with dlib, align them (openface template or dlib face chip) and "
                                   "write square crops plus manifest.jsonl, faces_config.json and summary.json.")
    p.add_argument("src", nargs="+", help="folder(s) of photos, read recursively (e.g. the crawl's --out); with "
                                          "several, the manifest names inputs <folder name>/<path>")
    p.add_argument("--out", required=True, help="folder for the crops, e.g. data/faces (main.py --dataset faces)")
    p.add_argument("--detector", choices=["hog", "cnn"], default="hog", help="dlib HOG or CNN (mmod) detector [hog]")
    p.add_argument("--upsample", type=int, default=1, help="upsample the photo this many times to find small faces [1]")
    p.add_argument("--noupsample_fallback", action="store_true",
                   help="do not retry other upsample levels on photos where --upsample finds no face")
    p.add_argument("--align", choices=["openface", "chip"], default="openface",
                   help="openface: 3 landmarks onto openface's template; chip: dlib's 5-point face chip [openface]")
    p.add_argument("--landmarks", choices=["outer_eyes_and_nose", "inner_eyes_and_bottom_lip"],
                   default="outer_eyes_and_nose", help="which 3 landmarks --align openface maps [outer_eyes_and_nose]")
    p.add_argument("--size", type=int, default=128, help="side of the square crops in pixels [128]")
    p.add_argument("--padding", type=float, default=None,
                   help="margin around the face as a fraction of it [openface 0.1: the template fills the middle "
                        "~108 px of 128, like CelebA with --crop; chip 0.25, dlib's default]")
    p.add_argument("--format", choices=["jpg", "png"], default="jpg", help="crop file format [jpg]")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality [95]")
    p.add_argument("--faces", choices=["largest", "all", "single"], default="largest",
                   help="keep the largest face, all faces, or only photos with a single face [largest]")
    p.add_argument("--min_face_size", type=int, default=40, help="reject faces whose box is smaller (px) [40]")
    p.add_argument("--min_blur", type=float, default=0.0,
                   help="reject crops whose variance of the Laplacian (at 128 px) is below this; 0 = off [0]")
    p.add_argument("--max_outside", type=float, default=0.35,
                   help="reject crops with more than this fraction of pixels outside the photo [0.35]")
    p.add_argument("--grayscale", choices=["keep", "drop"], default="keep",
                   help="keep grayscale photos (as 3-channel crops) or drop them [keep]")
    p.add_argument("--dup_distance", type=int, default=24,
                   help="reject a crop within this many bits (of 256) of a kept crop's perceptual hash; -1 = off [24]")
    p.add_argument("--max_pixels", type=int, default=40_000_000, help="skip photos with more pixels [40000000]")
    p.add_argument("--max_detect_side", type=int, default=1024,
                   help="search faces on a copy shrunk to this long side (crops come from the full photo) [1024]")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes [all cores]")
    p.add_argument("--follow_symlinks", action="store_true",
                   help="read symlinks that point outside the input folder (refused and recorded by default)")
    p.add_argument("--noprogress", action="store_true", help="no progress bar")


def add_crawl_parser(sub):
    p = sub.add_parser("crawl", help="download the images of web pages (or a list of image URLs)",
                       description="Crawl seed pages within their sites and keep the images they show, named by "
                                   "sha256, with manifest.jsonl accounting for every URL. Rerun to resume.")
    p.add_argument("--out", required=True, help="folder for the images and manifest.jsonl")
    p.add_argument("--seeds", nargs="*", default=[], help="seed page URLs")
    p.add_argument("--seeds_file", help="file with one seed page URL a line")
    p.add_argument("--urls_file", help="file with one image URL a line (img2dataset-style list; # comments)")
    p.add_argument("--max_depth", type=int, default=2, help="follow links this many pages deep from a seed; "
                                                               "pagination (rel=next) stays at its page's depth [2]")
    p.add_argument("--max_pages", type=int, default=100, help="fetch at most this many pages in all [100]")
    p.add_argument("--max_images", type=int, default=0, help="stop storing images after this many; 0 = no limit [0]")
    p.add_argument("--delay", type=float, default=1.0,
                   help="seconds between requests to one host (robots.txt Crawl-delay wins when longer) [1.0]")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at once [4]")
    p.add_argument("--connect_timeout", type=float, default=10.0, help="seconds to connect [10]")
    p.add_argument("--read_timeout", type=float, default=20.0, help="seconds to wait for data [20]")
    p.add_argument("--max_time", type=float, default=60.0, help="seconds for a whole download [60]")
    p.add_argument("--max_bytes", type=int, default=20_000_000, help="largest body to download [20000000]")
    p.add_argument("--max_redirects", type=int, default=5, help="redirects followed per URL [5]")
    p.add_argument("--max_pixels", type=int, default=40_000_000, help="refuse images with more pixels [40000000]")
    p.add_argument("--max_links", type=int, default=20_000, help="links kept per page; more are cut [20000]")
    p.add_argument("--user_agent", default=None, help="User-Agent header (and robots.txt agent name)")
    p.add_argument("--allow_private", action="store_true",
                   help="follow links and redirects to private/loopback addresses (hosts you name are always allowed)")
    p.add_argument("--allow_link_local", action="store_true",
                   help="allow link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata services, "
                        "refused even for hosts you name or --allow_private")
    p.add_argument("--retry_failed", action="store_true", help="fetch again the URLs that failed in earlier runs")
    p.add_argument("--noprogress", action="store_true", help="no progress bar")


def read_lines(path):
    if path is None:
        return []
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]


def run_crawl(a):
    from preprocess import crawl
    extra = {"user_agent": a.user_agent} if a.user_agent else {}
    summary = crawl.run(a.out, seeds=a.seeds + read_lines(a.seeds_file), image_urls=read_lines(a.urls_file),
                        max_depth=a.max_depth, max_pages=a.max_pages, max_images=a.max_images, delay=a.delay,
                        concurrency=a.concurrency, connect_timeout=a.connect_timeout, read_timeout=a.read_timeout,
                        max_time=a.max_time, max_bytes=a.max_bytes, max_redirects=a.max_redirects,
                        max_pixels=a.max_pixels, allow_private=a.allow_private, retry_failed=a.retry_failed,
                        max_links=a.max_links, allow_link_local=a.allow_link_local,
                        progress=not a.noprogress,
                        **extra)
    print(crawl.format_summary(summary))


def run_faces(a):
    from preprocess import faces
    summary = faces.run(a.src, a.out, detector=a.detector, upsample=a.upsample, upsample_fallback=not a.noupsample_fallback, align=a.align,
                        landmarks=a.landmarks, size=a.size, padding=a.padding, format=a.format, quality=a.quality,
                        faces=a.faces, min_face_size=a.min_face_size, min_blur=a.min_blur,
                        max_outside=a.max_outside, grayscale=a.grayscale, dup_distance=a.dup_distance,
                        max_pixels=a.max_pixels, max_detect_side=a.max_detect_side, workers=a.workers,
                        follow_symlinks=a.follow_symlinks,
                        progress=not a.noprogress)
    print(faces.format_summary(summary))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m preprocess", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_crawl_parser(sub)
    add_faces_parser(sub)
    download.add_parser(sub)
    a = parser.parse_args(argv)
    try:
        {"crawl": run_crawl, "faces": run_faces, "download": download.run_cli}[a.command](a)
    except (OSError, ValueError) as e:  # missing folders, permissions, bad options: a message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
