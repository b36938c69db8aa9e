"""Damaged copies of model files, for the integrity tests of the Python path, the pair
style and its Kokkos twin (a module of its own: each test folder has its own conftest)."""
from pathlib import Path


def corrupt_model(src, dst, how: str = "bytes"):
    """A damaged copy of the model file ``src`` at ``dst``: 'bytes' flips bytes inside a
    stored weight member (its CRC-32 no longer matches, as on a bad disk or transfer);
    'rezip' changes the same bytes and writes a new, self-consistent zip archive (only the
    parameters' checksum can tell). Returns dst."""
    import zipfile
    src, dst = Path(src), Path(dst)
    with zipfile.ZipFile(src) as z:
        member = max((i for i in z.infolist() if "/data/" in i.filename),
                     key=lambda i: i.file_size)
        raw = bytearray(src.read_bytes())
        local = member.header_offset
        start = (local + 30 + int.from_bytes(raw[local + 26:local + 28], "little")
                 + int.from_bytes(raw[local + 28:local + 30], "little"))
        n = min(member.file_size, 4096)
        if how == "bytes":
            raw[start:start + n] = bytes(b ^ 0x55 for b in raw[start:start + n])
            dst.write_bytes(bytes(raw))
            return dst
        with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as out:
            for info in z.infolist():
                data = z.read(info.filename)
                if info.filename == member.filename:
                    data = bytes(b ^ 0x55 for b in data[:n]) + data[n:]
                out.writestr(info.filename, data)
    return dst
