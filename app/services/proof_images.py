"""Proof images: validated by decoding, re-encoded without metadata, with a thumbnail."""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from app.core.errors import ImageTooLarge, InvalidImage, UnsupportedImage
from app.db.models import ProofKind

try:  # HEIC (iPhone photos) through libheif, when pillow-heif is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_FORMATS = frozenset({"HEIF"})
except ImportError:  # pragma: no cover - pillow-heif is a declared dependency
    HEIF_FORMATS = frozenset()

# What each kind may be, by the format the decoder found (never the name or the declared type).
ACCEPTED = {
    ProofKind.PHOTO: frozenset({"JPEG", "MPO", "PNG"}) | HEIF_FORMATS,
    ProofKind.SIGNATURE: frozenset({"PNG"}),
}
THUMBNAIL_SIZE = (320, 320)
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Encoded:
    data: bytes
    content_type: str
    extension: str


@dataclass(frozen=True)
class ProofImage:
    image: Encoded
    thumbnail: Encoded
    width: int
    height: int


def _encode(image: Image.Image, kind: ProofKind) -> Encoded:
    out = io.BytesIO()
    # Saved without exif=, icc_profile= or text chunks: nothing of the device (GPS position,
    # camera, serial numbers, times) survives the re-encoding.
    if kind == ProofKind.SIGNATURE:
        image.save(out, format="PNG", optimize=True)
        return Encoded(out.getvalue(), "image/png", "png")
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Encoded(out.getvalue(), "image/jpeg", "jpg")


def process(data: bytes, *, kind: ProofKind, max_pixels: int) -> ProofImage:
    """Decodes the upload fully, or refuses it; returns metadata-free bytes to store."""
    try:
        with warnings.catch_warnings():
            # Our own pixel cap below replaces Pillow's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            source = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise UnsupportedImage("The file is not a JPEG, PNG or HEIC image") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"The image is larger than {max_pixels} pixels") from exc
    with source:
        if source.format not in ACCEPTED[kind]:
            allowed = "a PNG" if kind == ProofKind.SIGNATURE else "a JPEG, PNG or HEIC image"
            raise UnsupportedImage(f"A {kind} must be {allowed}")
        # The header's size, read before a single pixel is decoded: a tiny file can declare a
        # canvas that would take gigabytes to decode.
        if source.width * source.height > max_pixels:
            raise ImageTooLarge(f"The image is larger than {max_pixels} pixels")
        try:
            source.load()
            upright = ImageOps.exif_transpose(source)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise InvalidImage("The image is damaged or truncated") from exc
    encoded = _encode(upright, kind)
    thumb = upright.copy()
    thumb.thumbnail(THUMBNAIL_SIZE)
    return ProofImage(
        image=encoded,
        thumbnail=_encode(thumb, kind),
        width=upright.width,
        height=upright.height,
    )
