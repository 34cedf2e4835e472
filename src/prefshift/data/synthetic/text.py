"""Helpers shared by the writers (references, oracle) and the corruptions."""

from __future__ import annotations


def pad(text: str, phrases: list[str]) -> str:
    """Append padding phrases before the final full stop, so padding never splits a stated fact."""
    body = text.removesuffix(" .")
    parts = [part for part in [body, *phrases] if part]
    return " , ".join(parts) + " ." if parts else ""


def oracle_knobs(quality: float) -> tuple[float, float, float]:
    """What an oracle of `quality` in [0, 1] does: (P(state a key fact), P(a stated fact is wrong),
    padding scale). P(state) = 1 - 0.7 (1 - q); P(wrong) = 0.4 (1 - q)^2; the number of padding
    phrases is uniform in [0, scale * max_phrases] with scale = 1 - q.
    """
    gap = 1.0 - quality
    return 1.0 - 0.7 * gap, 0.4 * gap * gap, gap
