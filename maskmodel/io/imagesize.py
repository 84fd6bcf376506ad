"""Image size from the file header, without decoding: the guard against decompression bombs.

`declared_size` reads every format the crawler accepts: PNG, JPEG, BMP, GIF, WebP (lossy, lossless,
extended), TIFF (little- and big-endian, classic and BigTIFF: the largest image in the file), PBM/PGM/PPM
and JPEG 2000 (JP2 boxes or a raw codestream). A file whose format is unknown or whose header is
damaged has no size: the caller refuses it rather than handing it to a decoder blind.
"""

from __future__ import annotations

import re
import struct

_TIFF_SIZE_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8: the types TIFF allows for a size
_NETPBM = re.compile(rb"P[1-6](?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)")


def declared_size(head: bytes) -> tuple[int, int] | None:
    """(height, width) declared by the header in `head` (the first bytes of the file, or all of it), or
    None when the format is unknown or the header cannot be read."""
    for reader in (_png, _jpeg, _bmp, _gif, _webp, _tiff, _netpbm, _jpeg2000):
        try:
            size = reader(head)
        except (struct.error, IndexError, ValueError):
            return None
        if size is not None:
            return size if size[0] >= 0 and size[1] >= 0 else None
    return None


def _png(head: bytes) -> tuple[int, int] | None:
    if not head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    width, height = struct.unpack(">II", head[16:24])
    return height, width


def _bmp(head: bytes) -> tuple[int, int] | None:
    if not head.startswith(b"BM"):
        return None
    header_size = struct.unpack("<I", head[14:18])[0]
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    return abs(height), abs(width)


def _gif(head: bytes) -> tuple[int, int] | None:
    if not head.startswith((b"GIF87a", b"GIF89a")):
        return None
    width, height = struct.unpack("<HH", head[6:10])
    return height, width


def _jpeg(head: bytes) -> tuple[int, int] | None:
    """Walk the markers to the first start-of-frame; junk bytes between segments are skipped, as
    decoders do ("extraneous bytes before marker"), so they cannot hide the frame size."""
    if not head.startswith(b"\xff\xd8"):
        return None
    offset = 2
    while True:
        offset = head.index(b"\xff", offset)
        while head[offset] == 0xFF:  # fill bytes
            offset += 1
        marker = head[offset]
        offset += 1
        if marker == 0x00 or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # stuffed byte, TEM, RSTn, SOI
            continue
        length = struct.unpack(">H", head[offset:offset + 2])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[offset + 3:offset + 7])
            return height, width
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            raise ValueError("no frame header")
        offset += length


def _webp(head: bytes) -> tuple[int, int] | None:
    if not (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return None
    chunk = head[12:16]
    if chunk == b"VP8 ":  # lossy: key frame start code, then 14-bit sizes
        if head[23:26] != b"\x9d\x01\x2a":
            raise ValueError("bad VP8 frame")
        width, height = struct.unpack("<HH", head[26:30])
        return height & 0x3FFF, width & 0x3FFF
    if chunk == b"VP8L":  # lossless: signature byte, then 14-bit (size - 1) fields
        if head[20] != 0x2F:
            raise ValueError("bad VP8L signature")
        bits = int.from_bytes(head[21:25], "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit (size - 1) fields
        return int.from_bytes(head[27:30], "little") + 1, int.from_bytes(head[24:27], "little") + 1
    raise ValueError("unknown WebP chunk")


def _tiff(head: bytes) -> tuple[int, int] | None:
    """The largest image of all IFDs (a decoder may pick any page)."""
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or struct.unpack(order + "H", head[2:4])[0] not in (42, 43):
        return None
    big = struct.unpack(order + "H", head[2:4])[0] == 43
    count_format, entry_size, offset_format = ("Q", 20, "Q") if big else ("H", 12, "I")
    offset = struct.unpack(order + offset_format, head[8:16] if big else head[4:8])[0]
    largest, seen = None, set()
    while offset and offset not in seen and len(seen) < 64:
        seen.add(offset)
        count_size = 8 if big else 2
        (count,) = struct.unpack(order + count_format, head[offset:offset + count_size])
        size: dict[int, int] = {}
        for index in range(count):
            start = offset + count_size + index * entry_size
            entry = head[start:start + entry_size]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT, LONG or LONG8
                value_at = 12 if big else 8
                value_format = _TIFF_SIZE_TYPES.get(kind)
                if value_format is None:
                    raise ValueError(f"a width or length of TIFF type {kind}")
                value = struct.unpack(order + value_format, entry[value_at:value_at + struct.calcsize(value_format)])[0]
                size[tag] = max(value, size.get(tag, 0))  # declared twice: a decoder may take either
        if len(size) < 2:
            raise ValueError("an image without width or length")
        if largest is None or size[256] * size[257] > largest[0] * largest[1]:
            largest = (size[257], size[256])
        next_at = offset + count_size + count * entry_size
        offset = struct.unpack(order + offset_format, head[next_at:next_at + (8 if big else 4)])[0]
    if largest is None:
        raise ValueError("no image directory")
    return largest


def _netpbm(head: bytes) -> tuple[int, int] | None:
    if not (head[:1] == b"P" and head[1:2] in b"123456" and len(head) > 2):
        return None
    match = _NETPBM.match(head)
    if match is None:
        raise ValueError("bad Netpbm header")
    return int(match.group(2)), int(match.group(1))


def _jpeg2000(head: bytes) -> tuple[int, int] | None:
    """A raw codestream's SIZ segment, or a JP2 file read box by box, in order: the image header box
    (`ihdr`, the first box inside `jp2h`) and the codestream's SIZ when it lies within `head`; the larger
    of the two counts, since the decoder goes by the codestream. Bytes that merely look like a header
    elsewhere in the file are never taken for one."""
    if head.startswith(b"\xff\x4f\xff\x51"):
        return _codestream(head)
    if head[4:8] != b"jP  ":
        return None
    sizes = []
    for kind, body in _boxes(head):
        if kind == b"jp2h":
            inner = next(_boxes(body), (None, b""))
            if inner[0] != b"ihdr":
                raise ValueError("the JP2 header box does not start with an image header box")
            sizes.append(struct.unpack(">II", inner[1][:8]))
        elif kind == b"jp2c":
            sizes.append(_codestream(body))
            break
    if not sizes:
        raise ValueError("no JP2 header box")
    return max(sizes, key=lambda size: size[0] * size[1])


def _codestream(data: bytes) -> tuple[int, int]:
    """(height, width) of a JPEG 2000 codestream: its SIZ marker segment follows SOC."""
    if not data.startswith(b"\xff\x4f\xff\x51"):
        raise ValueError("a JPEG 2000 codestream starts with SOC and SIZ")
    width, height, x0, y0 = struct.unpack(">IIII", data[8:24])
    return height - y0, width - x0


def _boxes(data: bytes):
    """(type, content) of the JP2 boxes in `data`, in order (the last one cut where `data` ends)."""
    position = 0
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        header = 8
        if length == 1:
            length, header = struct.unpack(">Q", data[position + 8:position + 16])[0], 16
        elif length == 0:
            length = len(data) - position
        if length < header:
            raise ValueError("a JP2 box shorter than its header")
        yield kind, data[position + header:position + length]
        position += length


def exif_orientation(head: bytes) -> int:
    """The EXIF orientation (1-8) a JPEG's APP1 segment declares, 1 when it declares none or cannot be read.
    OpenCV's decoder turns the image by it, so 5-8 swap the decoded width and height."""
    try:
        if not head.startswith(b"\xff\xd8"):
            return 1
        offset = 2
        while head[offset] == 0xFF and head[offset + 1] not in (0xDA, 0xD9):
            marker, length = head[offset + 1], struct.unpack(">H", head[offset + 2:offset + 4])[0]
            segment = head[offset + 4:offset + 2 + length]
            if marker == 0xE1 and segment.startswith(b"Exif\0\0"):
                return _tiff_orientation(segment[6:])
            offset += 2 + length
    except (struct.error, IndexError):
        pass
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of the first IFD of an EXIF TIFF block; 1 when absent or out of range."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    for index in range(struct.unpack(order + "H", tiff[ifd:ifd + 2])[0]):
        entry = tiff[ifd + 2 + 12 * index:ifd + 14 + 12 * index]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag == 0x0112 and kind == 3:
            value = struct.unpack(order + "H", entry[8:10])[0]
            return value if 1 <= value <= 8 else 1
    return 1
