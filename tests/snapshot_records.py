"""The records of a snapshot file (docs/SNAPSHOT.md), for the Python tests
that change a recorded snapshot and replay it: a 16-byte header, then
records of a u32 type and a u32 length, each padded to 8 bytes, up to
the END record."""
import struct

END, REGION = 0, 3
HEADER = 16


def records(data):
    """(type, file offset, size with padding) of every record, END
    included."""
    out, at = [], HEADER
    while at + 8 <= len(data):
        rtype, length = struct.unpack_from("<II", data, at)
        size = 8 + ((length + 7) & ~7)
        out.append((rtype, at, size))
        at += size
        if rtype == END:
            break
    return out


def regions(data):
    """(address, file offset of the bytes, length) of every REGION record."""
    out = []
    for rtype, at, _ in records(data):
        if rtype == REGION:
            length = struct.unpack_from("<I", data, at + 4)[0]
            out.append((struct.unpack_from("<Q", data, at + 8)[0], at + 16, length - 8))
    return out
