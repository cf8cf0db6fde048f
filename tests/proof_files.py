"""Image files for the proof tests, made on the spot: good ones, damaged ones, and a bomb."""

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825
MAKE = 0x010F
CAMERA = "ZarizTestCam"


def jpeg(*, size: tuple[int, int] = (64, 48), gps: bool = False) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[MAKE] = CAMERA
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (32.0, 4.0, 51.0), 3: "E", 4: (34.0, 46.0, 50.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def heic(*, size: tuple[int, int] = (64, 48)) -> bytes:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", size, (30, 200, 30)).save(out, format="HEIF", quality=60)
    return out.getvalue()


def png(*, size: tuple[int, int] = (120, 40)) -> bytes:
    image = Image.new("LA", size, (0, 0))
    for x in range(10, 110):
        image.putpixel((x, 20), (0, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = jpeg(size=(256, 256))
    return data[: len(data) // 2]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(side: int = 30_000) -> bytes:
    """A valid PNG of side x side 1-bit pixels: ~100 KB on disk, ~110 MB once decoded."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter byte + packed pixels
    packer = zlib.compressobj(9)
    compressed = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", compressed)
        + _chunk(b"IEND", b"")
    )
