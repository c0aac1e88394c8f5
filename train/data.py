"""Datasets as quantised integer features: the form the netlist and the hardware consume.

Every loader returns unsigned ``feature_width``-bit integers. Quantisation of real-valued data:

- digits: pixel values 0..16 are already integers (feature_width 5);
- fashion_mnist, mnist, cifar10: bytes 0..255 (feature_width 8);
- breast_cancer: each feature is mapped linearly from its training-set [min, max] to 0..255 with
  rounding and clipping (feature_width 8); the scale is fitted on the training split only.

Files are read without executing anything: IDX files and the CIFAR-10 *binary* release (never the
pickled one).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from logicforge.errors import LogicforgeError
from logicforge.fileio import atomic_path

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

IDX_FILES = {  # file name -> md5, identical for both datasets' official releases layout
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
}
URLS = {
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
SYSTEM_DIRS = {"fashion_mnist": [Path("/usr/share/datasets/fashion-mnist")]}
HOW_TO_GET = {
    "fashion_mnist": "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), "
                     "or put the four IDX .gz files in DATA_DIR=<dir>",
    "mnist": "put the four MNIST IDX .gz files (train-images-idx3-ubyte.gz, ...) in DATA_DIR=<dir>",
    "cifar10": "put cifar-10-binary.tar.gz or its extracted cifar-10-batches-bin/ in DATA_DIR=<dir>",
}
SPLIT_SEED = 12345  # the fixed stratified split of the small bundled datasets


class DatasetError(LogicforgeError):
    pass


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # (n, F) int64 in [0, 2**feature_width)
    y_train: np.ndarray  # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    feature_width: int

    @property
    def features(self) -> int:
        return self.x_train.shape[1]


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
    data_dir = data_dir or os.environ.get("DATA_DIR")
    if name in ("digits", "breast_cancer"):
        return _sklearn(name)
    if name in IDX_FILES:
        return _idx_dataset(name, data_dir, download)
    if name == "cifar10":
        return _cifar10(data_dir, download)
    raise DatasetError(f"unknown dataset {name!r}")


VAL_SEED = 271828  # the fixed validation split (config key val_fraction), independent of the training seed


def hold_out(ds: Dataset, fraction: float) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Carve a validation set out of ``ds``'s training split: ``round(fraction * n_c)`` samples of each
    class c (at least one, and at least one left to train on), chosen with the fixed ``VAL_SEED``.

    Returns the dataset with the remaining training samples (the test split untouched) and
    ``(x_val, y_val)``. Hyper-parameters are chosen on the validation set, never on the test set.
    """
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"val_fraction {fraction!r}: must be between 0 and 1")
    rng = np.random.default_rng(VAL_SEED)
    val = []
    for c in np.unique(ds.y_train):
        idx = np.flatnonzero(ds.y_train == c)
        if len(idx) < 2:
            raise DatasetError(f"{ds.name}: class {c} has {len(idx)} training sample(s); cannot hold out a "
                               "validation share of it")
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        val.append(rng.permutation(idx)[:k])
    val_idx = np.sort(np.concatenate(val))
    keep = np.ones(len(ds.y_train), dtype=bool)
    keep[val_idx] = False
    rest = Dataset(ds.name, ds.x_train[keep], ds.y_train[keep], ds.x_test, ds.y_test, ds.class_names,
                   ds.feature_width)
    return rest, ds.x_train[val_idx], ds.y_train[val_idx]


# -- bundled with scikit-learn -----------------------------------------------------------------

def _sklearn(name: str) -> Dataset:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    raw = datasets.load_digits() if name == "digits" else datasets.load_breast_cancer()
    x, y = raw.data, raw.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=SPLIT_SEED)
    if name == "digits":
        return Dataset(name, x_tr.astype(np.int64), y_tr, x_te.astype(np.int64), y_te,
                       [str(d) for d in range(10)], 5)
    lo, hi = x_tr.min(axis=0), x_tr.max(axis=0)
    scale = np.where(hi > lo, 255.0 / np.where(hi > lo, hi - lo, 1.0), 0.0)
    q = lambda a: np.clip(np.rint((a - lo) * scale), 0, 255).astype(np.int64)  # noqa: E731
    return Dataset(name, q(x_tr), y_tr, q(x_te), y_te, [str(n) for n in raw.target_names], 8)


# -- IDX (MNIST, Fashion-MNIST) ----------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """Read a (possibly gzipped) IDX file of unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: cannot read IDX file ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if len(data) != header + int(np.prod(dims)):
        raise DatasetError(f"{path}: size does not match its header {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(name: str, files: list[str], data_dir) -> Path | None:
    candidates = []
    if data_dir:
        candidates += [Path(data_dir) / name, Path(data_dir)]
    candidates += SYSTEM_DIRS.get(name, []) + [_cache_dir() / name]
    for d in candidates:
        if all((d / f).exists() or (d / f.removesuffix(".gz")).exists() for f in files):
            return d
    return None


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "logicforge" / "data"


def _download(url: str, dest: Path, md5: str) -> None:
    """Fetch ``url`` to ``dest`` atomically, checking its MD5; raise DatasetError when offline."""
    if os.environ.get("LOGICFORGE_OFFLINE"):
        raise DatasetError("downloads are disabled (LOGICFORGE_OFFLINE is set)")
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            data = r.read()
    except OSError as e:
        raise DatasetError(f"cannot download {url} ({getattr(e, 'reason', e)})") from None
    if hashlib.md5(data).hexdigest() != md5:
        raise DatasetError(f"{url}: checksum mismatch, refusing the download")
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def _idx_dataset(name: str, data_dir, download: bool) -> Dataset:
    files = list(IDX_FILES[name])
    d = _find(name, files, data_dir)
    if d is None and download:
        target = Path(data_dir) / name if data_dir else _cache_dir() / name
        try:
            for f, md5 in IDX_FILES[name].items():
                if not (target / f).exists():
                    _download(URLS[name] + f, target / f, md5)
            d = target
        except DatasetError as e:
            raise DatasetError(f"{name}: dataset not found and {e}; {HOW_TO_GET[name]}") from None
    if d is None:
        raise DatasetError(f"{name}: dataset not found; {HOW_TO_GET[name]}")

    def get(f):
        p = d / f
        return read_idx(p if p.exists() else d / f.removesuffix(".gz"))

    x_tr, y_tr, x_te, y_te = (get(f) for f in files)
    names = FASHION_CLASSES if name == "fashion_mnist" else [str(i) for i in range(10)]
    return Dataset(name, x_tr.reshape(len(x_tr), -1).astype(np.int64), y_tr.astype(np.int64),
                   x_te.reshape(len(x_te), -1).astype(np.int64), y_te.astype(np.int64), names, 8)


# -- CIFAR-10 (binary release) -----------------------------------------------------------------

def _read_cifar_batches(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    recs = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    if recs.size % 3073:
        raise DatasetError("cifar10: batch file size is not a multiple of 3073-byte records")
    recs = recs.reshape(-1, 3073)
    return recs[:, 1:].astype(np.int64), recs[:, 0].astype(np.int64)


def _cifar10(data_dir, download: bool) -> Dataset:
    train_names = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_names = ["test_batch.bin"]
    roots = ([Path(data_dir), Path(data_dir) / "cifar10"] if data_dir else []) + [_cache_dir() / "cifar10"]
    for root in roots:
        folder = root / "cifar-10-batches-bin"
        if all((folder / f).exists() for f in train_names + test_names):
            x_tr, y_tr = _read_cifar_batches([(folder / f).read_bytes() for f in train_names])
            x_te, y_te = _read_cifar_batches([(folder / f).read_bytes() for f in test_names])
            return Dataset("cifar10", x_tr, y_tr, x_te, y_te, CIFAR_CLASSES, 8)
        archive = root / "cifar-10-binary.tar.gz"
        if archive.exists():
            return _cifar_from_tar(archive, train_names, test_names)
    if download:
        archive = (Path(data_dir) if data_dir else _cache_dir() / "cifar10") / "cifar-10-binary.tar.gz"
        try:
            _download(CIFAR_URL, archive, CIFAR_MD5)
        except DatasetError as e:
            raise DatasetError(f"cifar10: dataset not found and {e}; {HOW_TO_GET['cifar10']}") from None
        return _cifar_from_tar(archive, train_names, test_names)
    raise DatasetError(f"cifar10: dataset not found; {HOW_TO_GET['cifar10']}")


def _cifar_from_tar(archive: Path, train_names, test_names) -> Dataset:
    blobs = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():  # read members as bytes; nothing is extracted to disk
                base = Path(member.name).name
                if member.isfile() and base in train_names + test_names:
                    blobs[base] = tar.extractfile(member).read()
    except (OSError, tarfile.TarError) as e:
        raise DatasetError(f"{archive}: cannot read archive ({e})") from None
    missing = [f for f in train_names + test_names if f not in blobs]
    if missing:
        raise DatasetError(f"{archive}: missing {', '.join(missing)}")
    x_tr, y_tr = _read_cifar_batches([blobs[f] for f in train_names])
    x_te, y_te = _read_cifar_batches([blobs[f] for f in test_names])
    return Dataset("cifar10", x_tr, y_tr, x_te, y_te, CIFAR_CLASSES, 8)
