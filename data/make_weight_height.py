"""Write a synthetic ``weight-height.csv`` for the "Linear regression with Keras" lesson.

The lesson fits a straight line that predicts a person's weight (pounds) from their height
(inches). This script draws an imitation of the course's table: 10,000 people, half men and
half women, with heights between 54 and 79 inches. Within each group weight grows linearly
with height, plus noise; men are taller and heavier on average, so the pooled table still
follows one line well. The noise is set so that the least-squares line explains about 85%
of the variance in weight (R² ≈ 0.85), as the course's data does.

Why so many rows: the lesson feeds raw heights to Keras, and with inputs around 66 the
slope and the intercept pull against each other, so gradient descent needs thousands of
small steps to reach the best line. Steps within an epoch are cheap and epochs are not, so
the steps come from rows: 40 epochs over 200 rows stop at R² ≈ 0.47, over 10,000 rows
they reach R² ≈ 0.8 (see docs/exercises.md).

The output is fully determined by ``SEED``; run the script with no arguments to rewrite
``data/weight-height.csv`` next to it, or pass ``--out PATH`` to write elsewhere.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 20240607
ROWS_PER_GROUP = 5000
MIN_HEIGHT, MAX_HEIGHT = 54.0, 79.0
# Spread of weight (pounds) around each group's line; it sets the R² of the pooled fit.
WEIGHT_NOISE = 10.5
HEADER = "Gender,Height,Weight"
DEFAULT_OUT = Path(__file__).resolve().parent / "weight-height.csv"


@dataclass(frozen=True)
class Group:
    """How height is spread in one group, and the line its weights scatter around."""

    name: str
    height_mean: float
    height_spread: float
    slope: float
    intercept: float


GROUPS = (
    Group("Male", height_mean=69.0, height_spread=2.9, slope=6.0, intercept=-227.0),
    Group("Female", height_mean=63.7, height_spread=2.7, slope=6.0, intercept=-247.0),
)


def draw_heights(rng: np.random.Generator, group: Group) -> np.ndarray:
    """Heights of one group, drawn again wherever they fall outside the lesson's range."""
    heights = rng.normal(group.height_mean, group.height_spread, size=ROWS_PER_GROUP)
    outside = (heights < MIN_HEIGHT) | (heights > MAX_HEIGHT)
    while outside.any():
        heights[outside] = rng.normal(group.height_mean, group.height_spread, outside.sum())
        outside = (heights < MIN_HEIGHT) | (heights > MAX_HEIGHT)
    return heights


def draw_group(rng: np.random.Generator, group: Group) -> tuple[np.ndarray, np.ndarray]:
    """Heights and weights of one group, rounded to hundredths."""
    heights = draw_heights(rng, group)
    weights = group.intercept + group.slope * heights
    weights = weights + rng.normal(0.0, WEIGHT_NOISE, size=ROWS_PER_GROUP)
    return np.round(heights, 2), np.round(weights, 2)


def make_table(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return shuffled ``(gender, height, weight)`` columns."""
    rng = np.random.default_rng(seed)
    drawn = [draw_group(rng, group) for group in GROUPS]
    gender = np.repeat([group.name for group in GROUPS], ROWS_PER_GROUP)
    height = np.concatenate([h for h, _ in drawn])
    weight = np.concatenate([w for _, w in drawn])

    order = rng.permutation(gender.size)
    return gender[order], height[order], weight[order]


def linear_fit_r2(height: np.ndarray, weight: np.ndarray) -> float:
    """R² of the least-squares line weight = a * height + b."""
    slope, intercept = np.polyfit(height, weight, 1)
    residual = weight - (slope * height + intercept)
    return float(1.0 - np.sum(residual**2) / np.sum((weight - weight.mean()) ** 2))


def write_csv(path: Path, gender: np.ndarray, height: np.ndarray, weight: np.ndarray) -> None:
    """Write the table with the header the lesson expects."""
    rows = zip(gender, height, weight, strict=True)
    lines = [HEADER] + [f"{g},{h:.2f},{w:.2f}" for g, h, w in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic weight-height.csv.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV file to write")
    args = parser.parse_args()

    gender, height, weight = make_table()
    write_csv(args.out, gender, height, weight)
    print(f"wrote {args.out} ({gender.size} rows)")
    print(f"heights {height.min():.2f} to {height.max():.2f} in")
    print(f"weights {weight.min():.2f} to {weight.max():.2f} lb")
    print(f"R² of the least-squares line: {linear_fit_r2(height, weight):.3f}")


if __name__ == "__main__":
    main()
