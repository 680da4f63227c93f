"""Procedural stuff textures: sky, grass, wall (bricks) and water, drawn with a numpy RNG.

Each texture is a float32 RGB array [H, W, 3] with values roughly in 0..255 whose mean colour is
near the category's base colour, so a stuff class is recognisable by colour and by pattern.
"""
from typing import Callable, Dict, Sequence

import cv2
import numpy as np

__all__ = ["value_noise", "sky_texture", "grass_texture", "wall_texture", "water_texture",
           "stuff_texture", "TEXTURES"]


def value_noise(rng: np.random.Generator, height: int, width: int, cell_y: float,
                cell_x: float = None) -> np.ndarray:
    """Smooth noise [height, width], about zero-mean unit-variance, with feature size ``cell``."""
    cell_x = cell_y if cell_x is None else cell_x
    gh = int(np.ceil(height / cell_y)) + 3
    gw = int(np.ceil(width / cell_x)) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (int(round(gw * cell_x)), int(round(gh * cell_y))),
                     interpolation=cv2.INTER_CUBIC)
    oy = int(rng.integers(0, max(1, big.shape[0] - height + 1)))
    ox = int(rng.integers(0, max(1, big.shape[1] - width + 1)))
    return big[oy:oy + height, ox:ox + width]


def _fractal_noise(rng: np.random.Generator, height: int, width: int,
                   cells: Sequence[float]) -> np.ndarray:
    out = np.zeros((height, width), dtype=np.float32)
    weight = 1.0
    for cell in cells:
        out += weight * value_noise(rng, height, width, cell)
        weight *= 0.5
    return out / np.float32(sum(0.5 ** i for i in range(len(cells))))


def _jitter(rng: np.random.Generator, color: Sequence[float], amount: float) -> np.ndarray:
    return np.asarray(color, dtype=np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32)


def sky_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Vertical blue gradient with soft white clouds."""
    top = _jitter(rng, (95, 160, 225), 12)
    bottom = _jitter(rng, (175, 215, 245), 10)
    y = (np.arange(height, dtype=np.float32) / max(1, height - 1))[:, None, None]
    sky = top * (1 - y) + bottom * y
    sky = np.broadcast_to(sky, (height, width, 3)).copy()
    clouds = _fractal_noise(rng, height, width, (48.0, 20.0))
    alpha = np.clip((clouds - rng.uniform(0.2, 0.7)) * 0.9, 0.0, 0.75)[..., None]
    white = np.array([245, 247, 250], dtype=np.float32)
    return sky * (1 - alpha) + white * alpha


def grass_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Green noise with vertical blade streaks."""
    base = _jitter(rng, (70, 120, 40), 10)
    patches = _fractal_noise(rng, height, width, (32.0, 10.0))
    blades = value_noise(rng, height, width, 14.0, 1.6)
    shade = 1.0 + 0.16 * patches + 0.14 * blades
    grass = base[None, None, :] * shade[..., None]
    grass[..., 1] += 10.0 * np.clip(blades, 0, None)  # lighter blade tips
    return grass


def wall_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Brick wall: staggered bricks with per-brick colour jitter and light mortar joints."""
    brick_h = int(rng.integers(9, 16))
    brick_w = int(rng.integers(20, 35))
    mortar = 2
    shift0 = int(rng.integers(0, brick_w))
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]
    row = y // brick_h
    xs = x + shift0 + (row % 2) * (brick_w // 2)
    col = xs // brick_w
    rows, cols = height // brick_h + 2, (width + shift0 + brick_w) // brick_w + 2
    base = _jitter(rng, (150, 80, 60), 10)
    per_brick = base[None, None, :] * rng.uniform(0.82, 1.15, (rows, cols, 1)).astype(np.float32)
    wall = per_brick[row, col]  # [H, W, 3]
    grain = value_noise(rng, height, width, 3.0)
    wall = wall * (1.0 + 0.06 * grain[..., None])
    joint = ((y % brick_h) < mortar) | ((xs % brick_w) < mortar)
    mortar_color = _jitter(rng, (195, 188, 178), 8)
    return np.where(joint[..., None], mortar_color[None, None, :], wall)


def water_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Deep blue water with wave crests."""
    base = _jitter(rng, (30, 60, 120), 10)
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    k = rng.uniform(0.25, 0.45)
    tilt = rng.uniform(-0.08, 0.08)
    warp = 2.2 * value_noise(rng, height, width, 24.0)
    waves = np.sin(k * y + tilt * x + warp + rng.uniform(0, 2 * np.pi))
    crest = np.clip((waves - 0.55) / 0.45, 0.0, 1.0)
    depth = 1.0 + 0.12 * value_noise(rng, height, width, 40.0)
    water = base[None, None, :] * depth[..., None] * (1.0 + 0.12 * waves[..., None])
    foam = np.array([150, 190, 225], dtype=np.float32)
    return water * (1 - 0.6 * crest[..., None]) + foam * (0.6 * crest[..., None])


TEXTURES: Dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "sky": sky_texture,
    "grass": grass_texture,
    "wall": wall_texture,
    "water": water_texture,
}


def stuff_texture(name: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Texture of stuff class ``name`` as float32 [height, width, 3]."""
    return TEXTURES[name](rng, height, width).astype(np.float32)
