"""Writing packages: the collection deflated on two threads is one ordinary deflate stream."""

from __future__ import annotations

import random
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


def test_an_interrupt_while_an_entry_opens_is_raised_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C inside zipfile's open() left the archive writing an entry no one could close,
    and closing it raised a ValueError in place of the interrupt: the build printed a
    traceback instead of `interrupted by SIGINT`."""
    import signal
    import zipfile

    from neurodeck import apkg

    real_open = zipfile.ZipFile.open

    def open_then_interrupt(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        entry = real_open(self, *args, **kwargs)
        signal.raise_signal(signal.SIGINT)  # as if Ctrl-C came while the entry opened
        return entry

    monkeypatch.setattr(zipfile.ZipFile, "open", open_then_interrupt)
    collection = tmp_path / "collection.anki2"
    collection.write_bytes(b"rows")
    write = apkg.apkg_writer(collection, {}, timestamp=0)
    with pytest.raises(KeyboardInterrupt), (tmp_path / "deck.apkg").open("wb") as out:
        write(out)
