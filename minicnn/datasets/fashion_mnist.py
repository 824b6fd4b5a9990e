"""Fashion-MNIST (Zalando Research, MIT licence): 70,000 28x28 grayscale images, 10 classes.

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()

returns uint8 arrays of shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,), as Keras.
"""
import os
from pathlib import Path

from minicnn.datasets import _files
from minicnn.datasets._files import DataFileError, DataNotFoundError, download, find_file, read_idx

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# SHA-256 of each file's decompressed payload (the official release; Debian's copy too).
FILES = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # Zalando's
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",  # Keras's
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",  # GitHub's
]
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
DEBIAN_PACKAGE = "dataset-fashion-mnist"


def cache_dir():
    """minicnn's download cache: $MINICNN_CACHE_DIR/fashion-mnist, else the user cache folder's."""
    return _files.cache_dir("fashion-mnist")


def _missing(folder):
    return [name for name in FILES if find_file(folder, name) is None]


def _read_folder(folder):
    arrays = [read_idx(find_file(folder, name), sha) for name, sha in FILES.items()]
    x_train, y_train, x_test, y_test = arrays
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DataFileError(f"{folder}: images and labels disagree in number")
    return (x_train, y_train), (x_test, y_test)


def _named_folder(folder, what):
    """A folder the user named must hold the files: never written to, never skipped silently."""
    folder = Path(folder).expanduser()
    if (folder / "fashion-mnist").is_dir() and not _missing(folder / "fashion-mnist"):
        folder = folder / "fashion-mnist"
    missing = _missing(folder)
    if missing:
        raise DataNotFoundError(f"{what} {folder} does not hold the Fashion-MNIST files; missing: "
                                f"{', '.join(missing)}")
    return _read_folder(folder)


def load_data(path=None, source="files"):
    """Load Fashion-MNIST: ((x_train, y_train), (x_test, y_test)), uint8, as keras.datasets.

    Looks, in this order: the `path` argument; the folder in $MINICNN_DATA_DIR; minicnn's
    cache (cache_dir()); Debian's /usr/share/datasets/fashion-mnist; and finally downloads
    from the official mirrors into the cache. Every file is checked against its SHA-256.
    source="tfds" loads through tensorflow-datasets instead (pip install "minicnn[tfds]").
    """
    if source == "tfds":
        return _load_tfds(path)
    if source != "files":
        raise ValueError(f"source must be 'files' or 'tfds', got {source!r}")
    if path is not None:
        return _named_folder(path, "the path argument")
    if os.environ.get("MINICNN_DATA_DIR"):
        return _named_folder(os.environ["MINICNN_DATA_DIR"], "MINICNN_DATA_DIR")
    cache = cache_dir()
    for folder in (cache, Path(DEBIAN_DIR)):
        if not _missing(folder):
            return _read_folder(folder)
    try:
        download(FILES, MIRRORS, cache)
    except (DataNotFoundError, OSError) as e:
        raise DataNotFoundError(
            f"Fashion-MNIST was not found and could not be downloaded.\n{e}\n"
            f"Looked in {cache} and {DEBIAN_DIR}. To work offline, either put the four files "
            f"({', '.join(FILES)}) in a folder and call load_data(path=folder) or set "
            f"MINICNN_DATA_DIR=folder, or install Debian's copy: apt-get install {DEBIAN_PACKAGE}"
        ) from None
    return _read_folder(cache)


def _load_tfds(path):
    """Fashion-MNIST through tensorflow-datasets; `path` becomes its manual_dir: a folder holding
    the official .gz files, which tfds checks against its own registered checksums and prepares
    offline (into $TFDS_DATA_DIR, else ~/tensorflow_datasets). The samples come in tfds's order."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ImportError("load_data(source='tfds') needs tensorflow-datasets and TensorFlow: "
                          "pip install 'minicnn[tfds]'") from None
    kwargs = {}
    if path is not None:
        kwargs["download_and_prepare_kwargs"] = {
            "download_config": tfds.download.DownloadConfig(manual_dir=str(path))}
    train, test = tfds.as_numpy(tfds.load("fashion_mnist", split=["train", "test"], batch_size=-1,
                                          as_supervised=True, data_dir=os.environ.get("TFDS_DATA_DIR"), **kwargs))
    return ((train[0][..., 0], train[1].astype("uint8")), (test[0][..., 0], test[1].astype("uint8")))
