"""Render the deck's brain figures from the MNI ICBM152 2009a template. Run by hand, not by build.

    python -m pip install nilearn matplotlib      # once; neither is a neurodeck dependency
    python cards/media/make_figures.py            # writes the PNGs and figures.json here
    python cards/media/make_figures.py --check    # also build/figure-checks/*.png, shapes drawn
    python cards/media/make_figures.py --out DIR  # write into DIR instead (tests compare)

The template is the T1 image that nilearn ships (`nilearn.datasets.load_mni152_template()`,
no download): Fonov et al. (2009), copyright McConnell Brain Imaging Centre, Montreal
Neurological Institute, McGill University (see README.md beside this script).

Each figure is one slice, scaled to a fixed size and written as a greyscale PNG with no
timestamps or software names in it, so running the script twice gives the same bytes. Each
region is placed from standard MNI coordinates (mm) through the template's affine, and
figures.json records the shapes as fractions of the image, the form the occlusion notes in
../02b-brain-diagrams.yaml use (tests/test_shipped_figures.py holds the two equal).
Coordinates are approximate centres of each structure, as commonly reported; a box marks
where a structure is, not its exact outline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SCALE = 3  # output pixels per millimetre

# figure name -> the fixed plane (axis index, mm), the visible window in mm, and the regions:
# (occlusion id, group or None, answer, MNI centre x/y/z in mm, half-sizes in mm of the box
# along the image's horizontal and vertical axes).
FIGURES = {
    "midsagittal": {
        "plane": (0, 2),
        "window": ((-105, 75), (-60, 80)),  # y (anterior on the left, flipped), z
        "header": "Midsagittal slice (x = 2 mm)",
        "regions": [
            ("acc", None, "Anterior cingulate cortex", (0, 30, 20), (9, 6)),
            ("medial-pfc", None, "Medial prefrontal cortex", (0, 50, 5), (8, 9)),
            ("hypothalamus", None, "Hypothalamus", (0, -4, -10), (5, 4)),
            ("vta", None, "Ventral tegmental area", (4, -16, -12), (4, 4)),
        ],
    },
    "coronal": {
        "plane": (1, 14),
        "window": ((-75, 75), (-50, 80)),  # x (left hemisphere on the left), z
        "header": "Coronal slice (y = 14 mm), left hemisphere on the left",
        "regions": [
            ("insula-left", "anterior-insula", "Anterior insula", (-36, 16, 0), (5, 9)),
            ("insula-right", "anterior-insula", "Anterior insula", (36, 16, 0), (5, 9)),
            ("accumbens-left", "nucleus-accumbens", "Nucleus accumbens", (-10, 12, -8), (5, 4)),
            ("accumbens-right", "nucleus-accumbens", "Nucleus accumbens", (10, 12, -8), (5, 4)),
        ],
    },
    "axial": {
        "plane": (2, -18),
        "window": ((-75, 75), (-110, 75)),  # x (left on the left), y (anterior at the top)
        # A real minus sign: the header is typeset text, shown to learners.
        "header": "Axial slice (z = −18 mm), left hemisphere on the left, front at the top",  # noqa: RUF001
        "regions": [
            ("amygdala-left", "amygdala", "Amygdala", (-22, -4, -18), (6, 6)),
            ("amygdala-right", "amygdala", "Amygdala", (22, -4, -18), (6, 6)),
        ],
    },
}


def slice_image(data: np.ndarray, affine: np.ndarray, figure: dict) -> tuple[np.ndarray, object]:
    """The figure's slice as an 8-bit array (rows top to bottom), and mm -> pixel mapping."""
    axis, mm = figure["plane"]
    (h0, h1), (v0, v1) = figure["window"]
    inverse = np.linalg.inv(affine)
    horizontal, vertical = [a for a in range(3) if a != axis]

    def to_pixel(point_mm: tuple[float, float, float]) -> tuple[float, float]:
        # Voxel sizes are 1 mm and axes are aligned in this template (checked in main).
        along_h = point_mm[horizontal] - h0
        along_v = v1 - point_mm[vertical]  # up in the brain is up in the picture
        if figure is FIGURES["midsagittal"]:
            along_h = h1 - point_mm[horizontal]  # anterior on the left
        return along_h * SCALE, along_v * SCALE

    width, height = (h1 - h0) * SCALE, (v1 - v0) * SCALE
    columns = np.arange(width) / SCALE
    rows = np.arange(height) / SCALE
    h_mm = (h1 - columns) if figure is FIGURES["midsagittal"] else (h0 + columns)
    v_mm = v1 - rows
    points = np.zeros((4, height * width))
    grid_h, grid_v = np.meshgrid(h_mm, v_mm)
    points[axis] = mm
    points[horizontal] = grid_h.ravel()
    points[vertical] = grid_v.ravel()
    points[3] = 1
    voxels = inverse @ points
    from scipy.ndimage import map_coordinates

    values = map_coordinates(data.astype(np.float64), voxels[:3], order=1, mode="constant")
    pixels = np.clip(values / max(float(data.max()), 1.0) * 255.0, 0, 255).round()
    return pixels.astype(np.uint8).reshape(height, width), to_pixel


def write_png(path: Path, pixels: np.ndarray) -> None:
    """An 8-bit greyscale PNG with no metadata chunk at all (so no date, no software name)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def shapes(figure: dict, to_pixel: object, width: int, height: int) -> list[dict]:
    """Each region as an ellipse [left, top, width, height] in fractions of the image."""
    found = []
    for occlusion_id, group, answer, centre, (half_h, half_v) in figure["regions"]:
        x, y = to_pixel(centre)  # type: ignore[operator]
        box = [
            (x - half_h * SCALE) / width,
            (y - half_v * SCALE) / height,
            2 * half_h * SCALE / width,
            2 * half_v * SCALE / height,
        ]
        shape = {
            "id": occlusion_id,
            "answer": answer,
            "mni": list(centre),
            "ellipse": [round(v, 4) for v in box],
        }
        if group:
            shape["group"] = group
        found.append(shape)
    return found


def draw_check(path: Path, pixels: np.ndarray, found: list[dict]) -> None:
    """A copy with each shape outlined and named, for a person to look at (not shipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    height, width = pixels.shape
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(pixels, cmap="gray", vmin=0, vmax=255)
    for shape in found:
        left, top, w, h = shape["ellipse"]
        ax.add_patch(
            Ellipse(
                ((left + w / 2) * width, (top + h / 2) * height),
                w * width,
                h * height,
                fill=False,
                color="red",
                linewidth=1.5,
            )
        )
        ax.text(
            (left + w / 2) * width,
            top * height - 4,
            shape["id"],
            color="yellow",
            ha="center",
            fontsize=8,
        )
    ax.axis("off")
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str]) -> None:
    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=1)
    affine = template.affine
    if not np.allclose(np.abs(affine[:3, :3]), np.eye(3)):
        raise SystemExit("expected a 1 mm template with axis-aligned voxels")
    data = np.asarray(template.get_fdata())
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else HERE
    record = {}
    for name, figure in FIGURES.items():
        pixels, to_pixel = slice_image(data, affine, figure)
        height, width = pixels.shape
        write_png(out / f"{name}.png", pixels)
        found = shapes(figure, to_pixel, width, height)
        record[name] = {
            "image": f"media/{name}.png",
            "width": width,
            "height": height,
            "header": figure["header"],
            "occlusions": found,
        }
        if "--check" in argv:
            checks = HERE.parents[1] / "build" / "figure-checks"  # git-ignored
            checks.mkdir(parents=True, exist_ok=True)
            draw_check(checks / f"{name}.png", pixels, found)
    (out / "figures.json").write_text(
        json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
