"""Dataset loaders on small files the tests write, and the encodings."""

import gzip
import io
import tarfile

import numpy as np
import pytest

from logicforge.train import data
from logicforge.train.encoding import fit_thresholds
from logicforge.netlist.reference import thermometer


def write_idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_loader(tmp_path, rng, name):
    imgs = rng.integers(0, 256, size=(20, 28, 28))
    labels = rng.integers(0, 10, size=20)
    d = tmp_path / name
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", imgs)
    write_idx(d / "train-labels-idx1-ubyte.gz", labels)
    write_idx(d / "t10k-images-idx3-ubyte.gz", imgs[:5])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", labels[:5])
    ds = data.load_dataset(name, tmp_path, download=False)
    assert ds.x_train.shape == (20, 784) and ds.feature_width == 8
    np.testing.assert_array_equal(ds.x_train, imgs.reshape(20, -1))
    np.testing.assert_array_equal(ds.y_test, labels[:5])


def test_idx_rejects_garbage(tmp_path):
    p = tmp_path / "x.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(data.DatasetError, match="size does not match"):
        data.read_idx(p)


def test_cifar_binary_loader(tmp_path, rng):
    def batch(n):
        recs = np.concatenate([rng.integers(0, 10, (n, 1)), rng.integers(0, 256, (n, 3072))], axis=1)
        return recs.astype(np.uint8).tobytes(), recs
    buf = io.BytesIO()
    expected = {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            blob, recs = batch(3)
            expected[name] = recs
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(buf.getvalue())
    ds = data.load_dataset("cifar10", tmp_path, download=False)
    assert ds.x_train.shape == (15, 3072) and ds.x_test.shape == (3, 3072)
    np.testing.assert_array_equal(ds.y_test, expected["test_batch.bin"][:, 0])
    np.testing.assert_array_equal(ds.x_train[:3], expected["data_batch_1.bin"][:, 1:])


def test_missing_dataset_message(tmp_path):
    with pytest.raises(data.DatasetError) as e:
        data.load_dataset("mnist", tmp_path, download=False)
    assert "DATA_DIR" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name,width,features", [("digits", 5, 64), ("breast_cancer", 8, 30)])
def test_bundled_datasets_are_quantised_integers(name, width, features):
    ds = data.load_dataset(name)
    assert ds.features == features and ds.feature_width == width
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == np.int64 and x.min() >= 0 and x.max() < 2 ** width
    # the split is fixed and stratified
    again = data.load_dataset(name)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    assert set(np.unique(ds.y_test)) == set(np.unique(ds.y_train))


@pytest.mark.parametrize("method", ["uniform", "quantile"])
def test_thresholds_are_valid_and_informative(method, rng):
    x = np.concatenate([rng.integers(0, 17, (200, 3)), np.zeros((200, 1), int), rng.integers(3, 5, (200, 1))], 1)
    ths = fit_thresholds(x, 6, method)
    assert ths[3] == []  # constant feature
    assert len(ths[4]) == 1  # two distinct values: one useful threshold
    for f, ts in enumerate(ths):
        assert ts == sorted(set(ts)) and len(ts) <= 6
        for t in ts:
            bit = x[:, f] >= t
            assert bit.any() and not bit.all()
    bits = thermometer(x, ths)
    assert bits.shape == (200, sum(map(len, ths)))
