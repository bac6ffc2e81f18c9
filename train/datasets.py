"""Where training images come from when `--data` is not given, and `pe data coco`, which puts the
paper's dataset there. Torch-free: the CLI resolves the data folder before torch is imported.

The paper trains style networks on MS-COCO train2014 (about 80k images) and SR networks on 10k
of them. `pe data coco` downloads `train2014.zip` (13.5 GB) from cocodataset.org:
- resumable: bytes go to `train2014.zip.part`; a later run asks the server for the rest (HTTP
  Range) and starts over only when the server ignores the request (a 200 instead of a 206);
- checked: the MD5 that the COCO release lists is computed while the bytes arrive (the part
  already on disk is hashed first), and a mismatch deletes the part and says so;
- atomic: the zip appears under its name only once complete and checked, and images are
  unpacked into a hidden folder beside the target that is renamed into place at the end, so an
  interrupted unpack never leaves a folder that looks finished.
`--subset N` unpacks the first N images by name (the same N on every machine) into
`train2014-N/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from perceptual_edge.errors import InputError, UnavailableError

DATA_ENV = "PE_DATA"  # a folder of training images
HOME_ENV = "PE_DATA_HOME"  # where `pe data` puts datasets
CHUNK = 1 << 20
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Dataset:
    name: str
    url: str
    md5: str
    folder: str  # the folder inside the zip that holds the images, and the one unpacked
    images: int  # how many the release has: --subset is checked before any download


COCO_TRAIN2014 = Dataset(
    name="MS-COCO train2014",
    url="http://images.cocodataset.org/zips/train2014.zip",
    md5="0da8c0bd3d6becc4dcb32757491aca88",
    folder="train2014",
    images=82_783,
)
SR_SUBSET = 10_000  # the paper's SR training set: 10k COCO images


def data_home() -> Path:
    """$PE_DATA_HOME, else $XDG_DATA_HOME/perceptual-edge, else ~/.local/share/perceptual-edge."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "perceptual-edge"


def coco_dir(root: Path | None = None) -> Path:
    return (root if root is not None else data_home()) / "coco"


def unpacked_folder(root: Path, dataset: Dataset, subset: int | None) -> Path:
    return root / (dataset.folder if subset is None else f"{dataset.folder}-{subset}")


def resolve_data(explicit: Path | None, task: str) -> Path:
    """--data, then $PE_DATA, then what `pe data coco` unpacked (for SR its 10k subset first)."""
    if explicit is not None:
        return explicit
    env = os.environ.get(DATA_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise InputError(f"${DATA_ENV}={p}: no such folder")
        return p
    root = coco_dir()
    candidates = [unpacked_folder(root, COCO_TRAIN2014, None)]
    if task == "sr":
        candidates.insert(0, unpacked_folder(root, COCO_TRAIN2014, SR_SUBSET))
    for c in candidates:
        if c.is_dir():
            return c
    fetch = "pe data coco" + (f" --subset {SR_SUBSET}" if task == "sr" else "")
    raise InputError(
        f"no training images: pass --data DIR, set ${DATA_ENV}=DIR, or run `{fetch}` "
        f"(the paper's MS-COCO train2014, into {candidates[0]})"
    )


# ------------------------------------------------------------------------------ download


def _open(url: str, offset: int, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": "perceptual-edge"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(req, timeout=timeout)


def _hash_file(path: Path, h: hashlib._Hash) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)


def download(
    url: str,
    dest: Path,
    md5: str | None,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download `url` to `dest` through `dest.part`, resuming a part left by an earlier run.

    `progress(bytes_so_far, total_or_None)` is called as bytes arrive. Returns `dest`.
    """
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    h = hashlib.md5()
    try:
        resp = _open(url, offset, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # the part is already whole (or longer than the file)
            resp = None
        else:
            raise UnavailableError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UnavailableError(f"download of {url} failed: {reason}") from None
    if resp is None:
        total = offset
    else:
        status = getattr(resp, "status", 200)
        length = resp.headers.get("Content-Length")
        if offset and status == 206:
            total = offset + int(length) if length else None
        else:  # a server that ignores Range sends the whole file again: start over
            offset = 0
            total = int(length) if length else None
    mode = "ab" if offset else "wb"
    if offset:
        _hash_file(part, h)
    done = offset
    if progress:
        progress(done, total)
    if resp is not None:
        try:
            with resp, open(part, mode) as f:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            raise UnavailableError(
                f"download of {url} stopped at {done} bytes ({e}); run the command again to resume"
            ) from None
    if total is not None and done != total:
        raise UnavailableError(
            f"download of {url} stopped at {done} of {total} bytes; run the command again to resume"
        )
    if md5 is not None and h.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise UnavailableError(
            f"{dest.name}: MD5 {h.hexdigest()} is not the published {md5}; the partial file "
            "was deleted, run the command again"
        )
    os.replace(part, dest)
    return dest


# ------------------------------------------------------------------------------ unpack


def _members(zf: zipfile.ZipFile, folder: str) -> list[zipfile.ZipInfo]:
    out = []
    for info in zf.infolist():
        name = info.filename
        parts = Path(name).parts
        if info.is_dir() or not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        if name.startswith("/") or ".." in parts or len(parts) != 2 or parts[0] != folder:
            continue  # only FOLDER/IMAGE: nothing can land outside the target
        out.append(info)
    return sorted(out, key=lambda i: i.filename)


def unpack(
    archive: Path,
    root: Path,
    dataset: Dataset,
    subset: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, int]:
    """Unpack the dataset's images (all, or the first `subset` by name) into their folder under
    `root`, atomically. Returns the folder and the number of images."""
    target = unpacked_folder(root, dataset, subset)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{archive}: not a readable zip ({e})") from None
    with zf:
        members = _members(zf, dataset.folder)
        if not members:
            raise InputError(f"{archive}: no images under {dataset.folder}/")
        if subset is not None:
            if subset > len(members):
                raise InputError(f"--subset {subset}: the archive has {len(members)} images")
            members = members[:subset]
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
        try:
            for i, info in enumerate(members, 1):
                out = tmp / Path(info.filename).name
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                if progress:
                    progress(i, len(members))
            tmp.chmod(0o755)
            os.replace(tmp, target)
        except zipfile.BadZipFile as e:
            raise InputError(f"{archive}: corrupt zip ({e})") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(tmp)
    return target, len(members)


def fetch_dataset(
    dataset: Dataset,
    root: Path,
    subset: int | None = None,
    keep_zip: bool = False,
    log: Callable[[str], None] = print,
    download_progress: Callable[[int, int | None], None] | None = None,
    unpack_progress: Callable[[int, int], None] | None = None,
) -> Path:
    """`pe data coco`: download (resuming), check, unpack; a finished folder is left alone."""
    if subset is not None and subset < 1:
        raise InputError(f"--subset {subset}: must be a positive number of images")
    if subset is not None and subset > dataset.images:
        raise InputError(f"--subset {subset}: {dataset.name} has {dataset.images} images")
    target = unpacked_folder(root, dataset, subset)
    if target.is_dir():
        log(f"{target} is already there; nothing to do")
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {root}: {e.strerror or e}") from None
    archive = root / Path(dataset.url.rsplit("/", 1)[-1])
    if archive.is_file():
        log(f"using {archive} (downloaded before)")
    else:
        log(f"downloading {dataset.name} from {dataset.url} to {archive}")
        download(dataset.url, archive, dataset.md5, download_progress)
    folder, count = unpack(archive, root, dataset, subset, unpack_progress)
    if not keep_zip:
        archive.unlink()
    log(f"{count} images in {folder}")
    return folder
