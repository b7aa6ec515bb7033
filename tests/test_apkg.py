"""Writing packages: the collection deflated on two threads is one ordinary deflate stream."""

from __future__ import annotations

import random
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from neurodeck import apkg


@pytest.mark.parametrize("size", [0, 1, 4096, 4096 * 3, 4096 * 3 + 17, 100_000])
def test_chunked_deflate_unzips_to_the_same_bytes_every_time(tmp_path, monkeypatch, size):
    monkeypatch.setattr(apkg, "_CHUNK", 4096)  # many chunks, and sizes on their edges
    rng = random.Random(size)
    # Repetitive enough to make back-references across chunk boundaries, random enough to vary.
    words = [rng.randbytes(rng.randint(1, 12)) for _ in range(50)]
    data = b"".join(rng.choice(words) for _ in range(size))[:size]
    source = tmp_path / "collection.anki2"
    source.write_bytes(data)
    packages = []
    for name in ("one.apkg", "two.apkg"):
        apkg.write_apkg(source, {}, tmp_path / name, timestamp=1_700_000_000)
        packages.append((tmp_path / name).read_bytes())
    assert packages[0] == packages[1]
    with zipfile.ZipFile(tmp_path / "one.apkg") as archive:
        assert archive.testzip() is None  # CRCs match
        assert archive.read("collection.anki2") == data
        info = archive.getinfo("collection.anki2")
    assert info.compress_type == zipfile.ZIP_DEFLATED and info.file_size == size


def test_chunked_deflate_is_as_small_as_one_stream(tmp_path, monkeypatch):
    # Each chunk starts from the 32 KiB before it, so cutting costs almost nothing.
    monkeypatch.setattr(apkg, "_CHUNK", 64 * 1024)
    rng = random.Random(1)
    data = b" ".join(rng.choice([b"neuron", b"axon", b"synapse", b"glia"]) for _ in range(200_000))
    source = tmp_path / "collection.anki2"
    source.write_bytes(data)
    apkg.write_apkg(source, {}, tmp_path / "out.apkg", timestamp=1_700_000_000)
    with zipfile.ZipFile(tmp_path / "out.apkg") as archive:
        chunked = archive.getinfo("collection.anki2").compress_size
    whole = len(zlib.compress(data, apkg._COMPRESS_LEVEL))
    assert chunked < whole * 1.02


def test_the_zip_is_the_zip_pythons_zipfile_writes(tmp_path: Path) -> None:
    """apkg.py writes the container itself (zipfile cannot take a deflate stream made
    elsewhere); for entries of one chunk, zipfile's own bytes are the oracle."""
    collection = tmp_path / "collection.anki2"
    collection.write_bytes(b"rows " * 5000)
    image = tmp_path / "brain.png"
    image.write_bytes(random.Random(2).randbytes(3000))
    media = {"brain.png": image, "z.svg": collection}
    apkg.write_apkg(collection, media, tmp_path / "ours.apkg", timestamp=1_700_000_001)
    entries = {
        "collection.anki2": collection.read_bytes(),
        "media": b'{"0": "brain.png", "1": "z.svg"}',
    }
    entries.update({"0": image.read_bytes(), "1": collection.read_bytes()})
    with zipfile.ZipFile(tmp_path / "theirs.apkg", "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=time.gmtime(1_700_000_001)[:6])
            info.external_attr = 0o644 << 16
            info.create_system = 3
            archive.writestr(
                info, entries[name], zipfile.ZIP_DEFLATED, compresslevel=apkg._COMPRESS_LEVEL
            )
    assert (tmp_path / "ours.apkg").read_bytes() == (tmp_path / "theirs.apkg").read_bytes()


def test_an_interrupt_while_deflating_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the package is written ends the build as an interrupt (the CLI prints
    `interrupted by SIGINT`), never as another error in its place."""
    import signal

    real_deflate = apkg._deflate

    def deflate_then_interrupt(*args):  # type: ignore[no-untyped-def]
        signal.raise_signal(signal.SIGINT)  # as if Ctrl-C came while deflating
        return real_deflate(*args)

    monkeypatch.setattr(apkg, "_deflate", deflate_then_interrupt)
    collection = tmp_path / "collection.anki2"
    collection.write_bytes(b"rows")
    write = apkg.apkg_writer(collection, {}, timestamp=0)
    with pytest.raises(KeyboardInterrupt), (tmp_path / "deck.apkg").open("wb") as out:
        write(out)
