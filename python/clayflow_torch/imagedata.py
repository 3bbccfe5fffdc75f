"""MNIST / Fashion-MNIST for image training, found where clayflow looks (src/data/image-datasets.ts):
--data-dir (<dir>/<name>/, then <dir>/), CLAYFLOW_DATA_DIR (the same), the user cache
(~/.cache/clayflow/<name>/), then /usr/share/datasets/<name>/ (Debian's dataset-fashion-mnist).
Nothing is downloaded: copy the four IDX files into one of those folders."""
import gzip
import os
import struct

import torch
import torch.nn.functional as F

SPLITS = {"train": "train", "test": "t10k"}


def _folders(name, data_dir):
    out = []
    for d in [data_dir, os.environ.get("CLAYFLOW_DATA_DIR")]:
        if d:
            out += [os.path.join(d, name), d]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    out.append(os.path.join(cache, "clayflow", name))
    out.append(os.path.join("/usr/share/datasets", name))
    return out


def _find(folder, stem):
    for f in (stem, stem + ".gz"):
        p = os.path.join(folder, f)
        if os.path.exists(p):
            return p
    return None


def read_idx(path):
    """An IDX file (gzip or not) -> uint8 tensor of its shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", buf[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * ndim, buf[4 : 4 + 4 * ndim])
    data = torch.frombuffer(bytearray(buf[4 + 4 * ndim :]), dtype=torch.uint8)
    return data[: int(torch.tensor(dims).prod())].reshape(dims)


def load_images(name, split, data_dir=None):
    """(images uint8 [n, H, W, 1], labels uint8 [n]) of a split ("train" or "test")."""
    prefix = SPLITS[split]
    tried = []
    for folder in _folders(name, data_dir):
        imgs = _find(folder, f"{prefix}-images-idx3-ubyte")
        labels = _find(folder, f"{prefix}-labels-idx1-ubyte")
        tried.append(folder)
        if imgs and labels:
            x = read_idx(imgs)
            return x.reshape(*x.shape, 1), read_idx(labels)
    raise FileNotFoundError(
        f"{name} {split} images not found in {', '.join(tried)}: copy {prefix}-images-idx3-ubyte.gz and "
        f"{prefix}-labels-idx1-ubyte.gz into one of them (Debian: apt-get install dataset-fashion-mnist), or pass --data-dir"
    )


def image_context(pixels, spec):
    """The context row of each image [n, H, W, C] (uint8), as clayflow's imageContext: the
    f x f block means / 255 ("downsample"), or the left W/2 columns / 255 ("left-half")."""
    x = pixels.double() / 255
    if spec["kind"] == "left-half":
        return x[:, :, : x.shape[2] // 2, :].reshape(x.shape[0], -1)
    f = spec["factor"]
    pooled = F.avg_pool2d(x.permute(0, 3, 1, 2), f)
    return pooled.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def one_hot(labels, classes):
    return F.one_hot(labels.long(), classes).double()
