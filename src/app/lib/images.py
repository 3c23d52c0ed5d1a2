"""Uploaded pictures: judged by their bytes, bounded in pixels, stored re-encoded without their metadata."""

from __future__ import annotations

import warnings
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

from app.lib.i18n import gettext as _

PICTURE_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
# A phone photo has 12-48 megapixels; more is a decompression bomb (a few KB claiming gigapixels).
MAX_PIXELS = 50_000_000
# A profile picture is shown at most a few hundred pixels wide.
STORED_SIDE = 1024


class PictureRejected(Exception):
    """The upload is no picture we keep; the message says why, for the person who sent it."""


def clean_picture(content: bytes) -> tuple[bytes, str]:
    """The picture re-encoded in its own format, at most STORED_SIDE square, upright, with no EXIF (GPS) or text
    chunks; and its file extension."""
    not_a_picture = PictureRejected("Upload a PNG, JPEG, GIF or WebP image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(content)) as image:
                image_format = image.format or ""
                if image_format not in PICTURE_FORMATS:
                    raise not_a_picture
                if image.width * image.height > MAX_PIXELS:
                    raise PictureRejected(
                        _("The picture has more than %(millions)s million pixels.", millions=MAX_PIXELS // 1000000)
                    )
                image.draft("RGB", (STORED_SIDE, STORED_SIDE))  # JPEG decodes at a fraction of its size
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((STORED_SIDE, STORED_SIDE))
                return encode(upright, image_format), PICTURE_FORMATS[image_format]
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PictureRejected(
            _("The picture has more than %(millions)s million pixels.", millions=MAX_PIXELS // 1000000)
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise not_a_picture from exc


def encode(image: Image.Image, image_format: str) -> bytes:
    """Pillow writes only what it is given: no exif=, icc_profile= or pnginfo= means no metadata."""
    if image_format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    if image_format == "GIF" and image.mode not in ("P", "L"):
        image = image.convert("P")
    buffer = BytesIO()
    image.save(buffer, format=image_format, **({"quality": 88} if image_format in ("JPEG", "WEBP") else {}))
    return buffer.getvalue()
