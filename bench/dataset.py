"""The benchmark's documents: deterministic, realistic-ish, about 200 bytes of BSON each.

Document ``i`` has ``_id = i`` (an int, so any loaded ``_id`` can be drawn at random),
a unique ``sku`` (selective equality), scalar fields with known distributions
(``category`` 20 values, ``status`` 4, ``price`` uniform [0, 1000), ``qty`` uniform
[0, 500)), a nested ``address`` (``address.zip`` has :data:`ZIPS` values, spread
evenly), a date and a two-element ``tags`` array.  Query parameters are derived from
the same formulas, so every server answers the same questions about the same data.
"""
from __future__ import annotations

import datetime
import random

import bson

CATEGORIES = [f"cat-{i:02d}" for i in range(20)]
STATUSES = ["active", "inactive", "pending", "banned"]
CITIES = [f"city-{i:02d}" for i in range(50)]
TAGS = ["red", "green", "blue", "new", "sale", "eco", "gift", "bulk", "rare", "promo"]
ZIPS = 10007  # a prime: zip(i) = i * 48271 mod ZIPS spreads ids evenly over zips
EPOCH = datetime.datetime(2024, 1, 1)
TAG_SETS = [(a, b) for a in TAGS for b in TAGS if a != b]


def sku(i: int) -> str:
    """The unique sku of document ``i`` (a bijection on 32-bit ids)."""
    return f"SKU-{(i * 2654435761) & 0xFFFFFFFF:010d}"


def zip_code(i: int) -> str:
    return f"{(i * 48271) % ZIPS:05d}"


def make_docs(start: int, count: int, seed: int = 42) -> list[dict]:
    """Documents ``start .. start+count-1`` (deterministic for a given seed and start)."""
    rng = random.Random(seed * 1_000_003 + start)
    rand, choice, randrange = rng.random, rng.choice, rng.randrange
    out = []
    for i in range(start, start + count):
        out.append({
            "_id": i,
            "sku": sku(i),
            "category": CATEGORIES[i % 20],
            "status": choice(STATUSES),
            "price": round(rand() * 1000, 2),
            "qty": randrange(500),
            "created": EPOCH + datetime.timedelta(seconds=i * 37),
            "address": {"city": choice(CITIES), "zip": zip_code(i), "geo": {"lat": round(rand() * 180 - 90, 4),
                                                                            "lon": round(rand() * 360 - 180, 4)}},
            "tags": list(choice(TAG_SETS)),
        })
    return out


def batches(n: int, size: int = 1000, seed: int = 42):
    """Yield lists of documents ``0 .. n-1`` in batches of ``size``."""
    for start in range(0, n, size):
        yield make_docs(start, min(size, n - start), seed)


def average_bson_size(sample: int = 200) -> float:
    docs = make_docs(0, sample)
    return sum(len(bson.encode(d)) for d in docs) / len(docs)
