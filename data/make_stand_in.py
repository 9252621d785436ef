"""Write a synthetic stand-in for the course's ``user_visit_duration.csv``.

The "Classification with Keras" lesson reads a small table of website visits: how long
each visit lasted (``Time (min)``) and whether the visitor bought something (``Buy``).
The course's own file is not redistributed with this project, so tests and the reference
notebook run against this imitation instead. It keeps the shape that matters to the
lesson: 100 rows, an even 50/50 split of buyers and non-buyers, durations between zero
and a little over four minutes recorded to the second, and classes that overlap enough
that the best single cut-off on duration classifies about 85% of the visits correctly.

The output is fully determined by ``SEED``; run the script with no arguments to rewrite
``data/user_visit_duration.csv`` next to it, or pass ``--out PATH`` to write elsewhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SEED = 20240606
ROWS_PER_CLASS = 50
MAX_MINUTES = 4.2
# Mean and spread of visit length (minutes) for non-buyers and buyers. The gap between
# the means sets how much the classes overlap, hence the best cut-off accuracy.
NO_BUY_MEAN, BUY_MEAN, SPREAD = 1.15, 2.55, 0.75
HEADER = "Time (min),Buy"
DEFAULT_OUT = Path(__file__).resolve().parent / "user_visit_duration.csv"


def draw_minutes(rng: np.random.Generator, mean: float) -> np.ndarray:
    """Draw visit lengths for one class, clipped to the lesson's range, to the second."""
    minutes = rng.normal(mean, SPREAD, size=ROWS_PER_CLASS).clip(0.0, MAX_MINUTES)
    return np.round(minutes * 60) / 60


def best_cut_accuracy(minutes: np.ndarray, buy: np.ndarray) -> float:
    """Accuracy of the best rule "buys when the visit lasts at least c minutes"."""
    cuts = np.append(np.unique(minutes), np.inf)
    hits = [np.mean((minutes >= cut) == buy) for cut in cuts]
    return float(max(hits))


def make_table(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Return shuffled ``(minutes, buy)`` columns for the stand-in table."""
    rng = np.random.default_rng(seed)
    minutes = np.concatenate([draw_minutes(rng, NO_BUY_MEAN), draw_minutes(rng, BUY_MEAN)])
    buy = np.repeat([0, 1], ROWS_PER_CLASS)

    order = rng.permutation(minutes.size)
    return minutes[order], buy[order]


def write_csv(path: Path, minutes: np.ndarray, buy: np.ndarray) -> None:
    """Write the table with the header the lesson expects; floats keep their full repr."""
    lines = [HEADER] + [f"{float(m)!r},{int(b)}" for m, b in zip(minutes, buy, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the stand-in user_visit_duration.csv.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV file to write")
    args = parser.parse_args()

    minutes, buy = make_table()
    write_csv(args.out, minutes, buy)
    print(f"wrote {args.out} ({minutes.size} rows)")
    print(f"best single cut-off accuracy: {best_cut_accuracy(minutes, buy):.2f}")


if __name__ == "__main__":
    main()
