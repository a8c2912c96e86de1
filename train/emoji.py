"""Colour images without a download: Debian's Noto Color Emoji font rendered with Pillow.

`--data emoji` trains on them (about 1,300 distinct emoji from the font's main ranges, centred on a
white background, resized to `--image-size`, 64 by default); `python -m vaekit.train.emoji DIR`
writes them as a folder of PNG files instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
FONT_SIZE = 109  # the only size of the font's colour bitmaps
CANVAS = 160  # wider than any glyph (136x128 at FONT_SIZE)
DEFAULT_SIZE = 64
# Code points of the main emoji blocks: pictographs, emoticons, transport, supplemental symbols,
# symbols and pictographs extended-A, miscellaneous symbols and dingbats.
RANGES = ((0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF),
          (0x2600, 0x27BF))
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}


class FontMissing(ValueError):
    """The emoji font is not installed."""


def _font() -> FreeTypeFont:
    """The emoji font at the size of its colour bitmaps; FontMissing says how to install it."""
    from PIL import ImageFont

    if not FONT.is_file():
        raise FontMissing(f"emoji data is rendered from Debian's Noto Color Emoji font, but {FONT} is missing: "
                          "install it with `apt-get install fonts-noto-color-emoji`")
    return ImageFont.truetype(str(FONT), size=FONT_SIZE)


def emoji_images(size: int = DEFAULT_SIZE, channels: int = 3, background: str = "white",
                 progress: bool = False) -> np.ndarray:
    """Every distinct emoji of RANGES that the font draws, uint8 (N, channels, size, size): each glyph
    cropped to its drawn pixels, centred on a square of `background`, resized with Lanczos."""
    from PIL import Image, ImageDraw

    font = _font()
    codes = [c for lo, hi in RANGES for c in range(lo, hi + 1)]
    out = np.empty((len(codes), channels, size, size), dtype=np.uint8)
    seen: set[bytes] = set()
    n = 0
    for code in tqdm(codes, desc="rendering emoji", unit="glyph", disable=not progress):
        glyph = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((0, 0), chr(code), font=font, embedded_color=True)
        box = glyph.getchannel("A").getbbox()
        if box is None:  # not in the font: nothing drawn
            continue
        glyph = glyph.crop(box)
        if (key := glyph.tobytes()) in seen:
            continue
        seen.add(key)
        side = max(glyph.size)
        square = Image.new("RGBA", (side, side), (*BACKGROUNDS[background], 255))
        square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
        image = square.convert("RGB" if channels == 3 else "L").resize((size, size), Image.Resampling.LANCZOS)
        pixels = np.asarray(image, dtype=np.uint8)
        out[n] = pixels.transpose(2, 0, 1) if channels == 3 else pixels[None]
        n += 1
    return out[:n]


def write_folder(out: Path, size: int = DEFAULT_SIZE, background: str = "white") -> int:
    """Write every emoji as `out`/emoji_NNNN.png (RGB, size x size); returns how many."""
    from PIL import Image

    images = emoji_images(size, 3, background, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.transpose(1, 2, 0)).save(out / f"emoji_{i:04d}.png")
    return len(images)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vaekit.train.emoji", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder to write the PNG files to")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"side in pixels (default {DEFAULT_SIZE})")
    p.add_argument("--background", choices=tuple(BACKGROUNDS), default="white")
    args = p.parse_args(argv)
    try:
        n = write_folder(args.out, args.size, args.background)
    except FontMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {n} emoji of {args.size}x{args.size} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
