"""Hazard photos: sniff, bound, strip EXIF, thumbnail, store and find on disk.

The type is read from the bytes (Pillow), never from the file name or the client's
Content-Type. Each photo keeps three files under ``<data>/photos/<hazard>/<photo id>/``:
``original.<ext>`` (exactly as uploaded, EXIF and GPS included: staff only), ``public.<ext>``
(re-encoded from pixels alone, so no EXIF, XMP, ICC text or GPS survives) and ``thumb.jpg``.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from gis_service.config import Settings
from gis_service.errors import DomainError, Invalid, PayloadTooLarge, UnsupportedMediaType

# Pillow format name → (MIME type, file extension).
FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
EXTENSIONS = {mime: ext for mime, ext in FORMATS.values()}
VARIANTS = ("public", "thumb", "original")
_GPS_IFD = 0x8825


@dataclass
class Upload:
    """One uploaded file, before validation."""

    filename: str | None
    data: bytes


@dataclass
class Photo:
    """A validated photo, ready to store: the original bytes plus the stripped copies."""

    id: uuid.UUID
    content_type: str
    width: int
    height: int
    sha256: str
    original: bytes
    public: bytes
    thumb: bytes
    original_name: str | None
    had_exif: bool
    had_gps: bool
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ext(self) -> str:
        """File extension of the original and public copies."""
        return EXTENSIONS[self.content_type]


def check_count(n: int, settings: Settings) -> None:
    """At most ``photo_max_count`` photos per report or step."""
    if n > settings.photo_max_count:
        raise Invalid(
            f"{n} photos sent; at most {settings.photo_max_count} are accepted per report or step.",
            code="too_many_photos",
            count=n,
            max_count=settings.photo_max_count,
        )


def _strip(img: Image.Image, fmt: str) -> bytes:
    """Re-encode the pixels alone (orientation applied first): no EXIF, XMP or text survives."""
    img = ImageOps.exif_transpose(img)
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    elif fmt == "WEBP" and img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    # A fresh image built from raw pixels carries no info dict, so nothing can leak through
    # a format plugin that copies metadata from im.info by default.
    clean = Image.frombytes(img.mode, img.size, img.tobytes())
    if img.mode == "P" and img.getpalette():
        clean.putpalette(img.getpalette())
        if "transparency" in img.info:
            clean.info["transparency"] = img.info["transparency"]
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, "JPEG", quality=90, optimize=True)
    elif fmt == "PNG":
        clean.save(out, "PNG", optimize=True)
    else:
        clean.save(out, "WEBP", quality=85)
    return out.getvalue()


def _thumb(img: Image.Image, size: int) -> bytes:
    """A JPEG thumbnail, long side ``size``, transparency flattened onto white."""
    img = ImageOps.exif_transpose(img)
    img.thumbnail((size, size))
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img, mask=img.getchannel("A"))
        img = bg
    elif img.mode != "RGB":
        img = img.convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


def _decoded_size(img: Image.Image, fmt: str, target: int) -> tuple[int, int]:
    """The size ``img`` will decode at: JPEG decodes at 1/2, 1/4 or 1/8 scale (its DCT
    allows it) while still at least ``target`` on the long side; the others in full."""
    width, height = img.size
    if fmt != "JPEG":
        return width, height
    scale = 1
    while scale < 8 and max(width, height) // (scale * 2) >= target:
        scale *= 2
    return -(-width // scale), -(-height // scale)


def validate(
    upload: Upload, settings: Settings, index: int = 0, budget: list[int] | None = None
) -> Photo:
    """Sniff, bound and decode one upload; 413/415/422 with the file named otherwise.

    The pixels are bounded before anything is decoded: the image as stored
    (``photo_max_pixels``), as decoded (``photo_max_decoded_pixels``: JPEGs decode at a
    reduced scale, enough for the public copy) and, through ``budget`` (the pixels the
    request has left), all photos of one request together: five 60-megapixel PNGs used to
    take 8 s and 1.2 GB to accept (issue 11, finding 5).
    """
    name = upload.filename or f"photo {index + 1}"
    data = upload.data
    if not data:
        raise Invalid(f"{name} is empty.", code="empty_photo", file=name)
    if len(data) > settings.photo_max_bytes:
        raise PayloadTooLarge(
            f"{name} is {len(data) / 1048576:.1f} MB; each photo may be at most "
            f"{settings.photo_max_bytes / 1048576:.0f} MB.",
            code="photo_too_large",
            file=name,
            bytes=len(data),
            max_bytes=settings.photo_max_bytes,
        )
    allowed = ", ".join(m for m, _ in FORMATS.values())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data), formats=list(FORMATS))
            fmt = probe.format
            width, height = probe.size
            if width * height > settings.photo_max_pixels:
                raise PayloadTooLarge(
                    f"{name} is {width}×{height} pixels; the most accepted is "
                    f"{settings.photo_max_pixels:,} pixels.",
                    code="photo_too_large",
                    file=name,
                    width=width,
                    height=height,
                )
            dw, dh = _decoded_size(probe, fmt, settings.photo_public_px)
            if dw * dh > settings.photo_max_decoded_pixels:
                raise PayloadTooLarge(
                    f"{name} is {width}×{height} pixels; a {fmt} photo may have at most "
                    f"{settings.photo_max_decoded_pixels:,} (a JPEG may be larger).",
                    code="photo_too_large",
                    file=name,
                    width=width,
                    height=height,
                )
            if budget is not None:
                if dw * dh > budget[0]:
                    raise PayloadTooLarge(
                        f"The photos of this request are too large together (at {name}); "
                        "send fewer or smaller photos.",
                        code="photos_too_large",
                        file=name,
                        max_pixels=settings.photo_max_request_pixels,
                    )
                budget[0] -= dw * dh
            probe.verify()  # checks the structure; the image must be reopened afterwards
            img = Image.open(io.BytesIO(data), formats=list(FORMATS))
            if fmt == "JPEG":
                img.draft(img.mode, (settings.photo_public_px, settings.photo_public_px))
            img.load()
    except DomainError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnsupportedMediaType(
            f"{name} is not a JPEG, PNG or WebP image (the type is read from the bytes, not "
            f"the file name). Accepted: {allowed}.",
            code="unsupported_photo_type",
            file=name,
            accepted=[m for m, _ in FORMATS.values()],
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Invalid(
            f"{name} could not be decoded: {exc}.", code="corrupt_photo", file=name
        ) from None
    if fmt not in FORMATS:  # pragma: no cover - formats= already restricts this
        raise UnsupportedMediaType(f"{name}: {fmt} is not accepted.", code="unsupported_photo_type")
    exif = img.getexif()
    had_gps = bool(exif.get_ifd(_GPS_IFD)) or _GPS_IFD in exif
    had_exif = len(exif) > 0 or "exif" in img.info or "xmp" in img.info
    # The public copy needs no more than photo_public_px: shrink in place first, so that
    # every copy made below (orientation, stripping, the thumbnail) is of the small image.
    img.thumbnail((settings.photo_public_px, settings.photo_public_px))
    mime, _ = FORMATS[fmt]
    return Photo(
        id=uuid.uuid4(),
        content_type=mime,
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
        original=data,
        public=_strip(img, fmt),
        thumb=_thumb(img, settings.photo_thumb_px),
        original_name=(upload.filename or None) and upload.filename[:200],
        had_exif=had_exif,
        had_gps=had_gps,
    )


def validate_all(uploads: list[Upload], settings: Settings) -> list[Photo]:
    """Check the count, then every file, within one pixel budget for the request."""
    check_count(len(uploads), settings)
    budget = [settings.photo_max_request_pixels]
    return [validate(u, settings, i, budget) for i, u in enumerate(uploads)]


# Photos of other objects than hazards live in a folder of their kind: photos/visits/<id>/.
OWNERS = ("visits",)


def photo_dir(
    settings: Settings, hazard_id: int, photo_id: uuid.UUID | str, owner: str | None = None
) -> Path:
    """The folder of one photo's three files (of a hazard, or of an object of ``owner``)."""
    base = settings.photos_path
    if owner is not None:
        if owner not in OWNERS:
            raise ValueError(f"unknown photo owner {owner!r}")
        base = base / owner
    return base / str(int(hazard_id)) / str(uuid.UUID(str(photo_id)))


def write(settings: Settings, hazard_id: int, photo: Photo, owner: str | None = None) -> Path:
    """Write the three files; returns the folder (removed again by ``discard`` on rollback)."""
    folder = photo_dir(settings, hazard_id, photo.id, owner)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"original.{photo.ext}").write_bytes(photo.original)
    (folder / f"public.{photo.ext}").write_bytes(photo.public)
    (folder / "thumb.jpg").write_bytes(photo.thumb)
    return folder


def store(
    conn: Any,
    settings: Settings,
    insert: Any,
    row: dict[str, Any],
    owner_id: int,
    photos: list[Photo],
    uploaded_by: str,
    owner: str | None = None,
) -> tuple[list[str], list[Path]]:
    """The rows (``insert`` with ``row``'s owner columns) and files of some photos, in the
    caller's transaction; the folders are returned for cleanup if it does not commit."""
    ids: list[str] = []
    folders: list[Path] = []
    try:
        for position, photo in enumerate(photos):
            conn.execute(
                insert,
                {
                    **row,
                    "id": photo.id,
                    "position": position,
                    "content_type": photo.content_type,
                    "bytes": len(photo.original),
                    "width": photo.width,
                    "height": photo.height,
                    "sha256": photo.sha256,
                    "original_name": photo.original_name,
                    "had_exif": photo.had_exif,
                    "had_gps": photo.had_gps,
                    "uploaded_by": uploaded_by,
                },
            )
            folders.append(write(settings, owner_id, photo, owner))
            ids.append(str(photo.id))
    except BaseException:
        discard(folders)
        raise
    return ids, folders


def discard(folders: list[Path]) -> None:
    """Remove photo folders written by a transaction that did not commit."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def file_for(
    settings: Settings,
    hazard_id: int,
    photo_id: str,
    content_type: str,
    variant: str,
    owner: str | None = None,
    archived_to: str | None = None,
) -> tuple[Path, str]:
    """The path and media type of one variant of a stored photo (archived ones included)."""
    folder = photo_dir(settings, hazard_id, photo_id, owner)
    if archived_to:
        folder = settings.photo_archive_path / folder.relative_to(settings.photos_path)
    if variant == "thumb":
        return folder / "thumb.jpg", "image/jpeg"
    return folder / f"{variant}.{EXTENSIONS[content_type]}", content_type
