"""Dataset audit: unreadable files, exact and near-duplicates, conflicting labels,
pre-made augmented copies. Runs before every training and on its own
(``clarityx audit DIR``).

Near-duplicates are found by cosine similarity of small thumbnails taken after
the same field-of-view crop the model uses (so a re-cropped or re-encoded copy
still matches), compared under the 8 flips/rotations so that flipped or rotated
copies are found too. Comparing 10k thumbnails is a 10k × 10k matrix product:
seconds on 2 cores.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from clarityx.datasets import Sample
from clarityx.errors import ImageRejected
from clarityx.imageio import load_image
from clarityx.preprocess import prepare

THUMB = 32
NEAR_DUPLICATE_COSINE = 0.995
# Kaggle-style pre-made augmentation names: "_12_3456789.jpg".
AUGMENTED_NAME = re.compile(r"^_\d+_\d+\.")


@dataclass
class FileFacts:
    thumbnail: np.ndarray  # RGB THUMB×THUMB of the field of view, float32
    digest: str            # SHA-1 of the bytes: exact duplicates
    pixels: int            # full-resolution width × height


def read_file(path: Path) -> FileFacts:
    """Everything the audit needs from one file, read once. Decodes at reduced size when the
    format allows (JPEG draft mode: 5-10× faster)."""
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        pixels = im.width * im.height
        im.draft("RGB", (4 * THUMB, 4 * THUMB))
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if min(rgb.shape[:2]) < 4 * THUMB:  # small files: go through the full, validating path
        rgb = load_image(data, min_side=1)
    return FileFacts(prepare(rgb, THUMB).astype(np.float32), hashlib.sha1(data).hexdigest(), pixels)


def _normalise(v: np.ndarray) -> np.ndarray:
    v = v - v.mean(axis=1, keepdims=True)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)


def dihedral(thumbs: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of a stack of square thumbnails ``(N, T, T, C)``."""
    out = []
    for k in range(4):
        r = np.rot90(thumbs, k, axes=(1, 2))
        out.extend([r, r[:, :, ::-1]])
    return out


def near_duplicate_pairs(thumbs: np.ndarray, threshold: float = NEAR_DUPLICATE_COSINE,
                         chunk: int = 2048) -> list[tuple[int, int, float, int]]:
    """Pairs ``(i, j, cosine, transform)`` with i < j whose thumbnails match.

    ``transform`` is the index (0 = identity) of the flip/rotation of j that matched i best.
    """
    n = len(thumbs)
    base = _normalise(thumbs.reshape(n, -1))
    variants = [_normalise(v.reshape(n, -1)) for v in dihedral(thumbs)]
    best: dict[tuple[int, int], tuple[float, int]] = {}
    for t, var in enumerate(variants):
        for start in range(0, n, chunk):
            sims = base[start:start + chunk] @ var.T
            rows, cols = np.nonzero(sims > threshold)
            for r, c in zip(rows + start, cols):
                if r == c:
                    continue
                key = (min(r, c), max(r, c))
                s = float(sims[r - start, c])
                if key not in best or s > best[key][0]:
                    best[key] = (s, t)
    return sorted((i, j, s, t) for (i, j), (s, t) in best.items())


def connected_groups(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    """Union-find: a group id per item, items joined by any pair share a group."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(n)]


@dataclass
class AuditReport:
    root: str
    files: int
    class_counts: dict[str, int]
    unreadable: list[dict] = field(default_factory=list)
    exact_duplicate_groups: list[list[str]] = field(default_factory=list)
    near_duplicate_groups: list[list[str]] = field(default_factory=list)
    near_duplicate_pairs: int = 0
    conflicting_groups: list[dict] = field(default_factory=list)
    augmented_copies: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Per sample (same order as the samples audited): its duplicate group id.
    group_of: list[int] = field(default_factory=list, repr=False)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("group_of")
        return json.dumps(data, indent=2)

    def summary(self) -> str:
        lines = [f"Audit of {self.root}: {self.files} files in {self.seconds:.1f} s"]
        lines.append("Class counts: " + ", ".join(f"{k} {v}" for k, v in sorted(self.class_counts.items())))
        lines.append(f"Unreadable files: {len(self.unreadable)}")
        for u in self.unreadable[:10]:
            lines.append(f"  {u['path']}: {u['reason']}")
        lines.append(f"Exact duplicate groups (same bytes): {len(self.exact_duplicate_groups)}")
        for g in self.exact_duplicate_groups[:10]:
            lines.append("  " + " = ".join(g))
        lines.append(f"Near-duplicate groups: {len(self.near_duplicate_groups)} "
                     f"({self.near_duplicate_pairs} pairs, cosine > {NEAR_DUPLICATE_COSINE} on "
                     f"{THUMB} px thumbnails, flips/rotations included)")
        lines.append(f"Groups carrying different labels: {len(self.conflicting_groups)}")
        for g in self.conflicting_groups[:30]:
            lines.append(f"  {g['labels']}: " + ", ".join(g['files'][:4]) + (" ..." if len(g['files']) > 4 else ""))
        lines.append(f"Suspected pre-made augmented copies: {len(self.augmented_copies)}")
        for a in self.augmented_copies[:5]:
            lines.append(f"  {a}")
        return "\n".join(lines)


def _is_augmented(sample: Sample, index: int, matches: dict[int, list[tuple[int, int]]],
                  sizes: list[int]) -> bool:
    """Named like a pre-made augmentation, or a lower-resolution copy of another file
    seen flipped or rotated."""
    if AUGMENTED_NAME.match(sample.path.name):
        return True
    for other, transform in matches.get(index, []):
        if transform != 0 and sizes[index] < sizes[other]:
            return True
    return False


def audit(samples: list[Sample], root: str = "", threads: int = 4) -> AuditReport:
    """Audit ``samples``; the report keeps a duplicate-group id per sample for the split."""
    start = time.perf_counter()
    n = len(samples)

    def load(s: Sample) -> tuple[FileFacts | None, str | None]:
        try:
            return read_file(s.path), None
        except (ImageRejected, OSError, ValueError) as exc:
            return None, str(exc)

    with ThreadPoolExecutor(threads) as pool:
        loaded = list(pool.map(load, samples))
    unreadable = [{"path": str(s.path), "reason": err} for s, (_, err) in zip(samples, loaded) if err]
    ok = [i for i, (t, _) in enumerate(loaded) if t is not None]
    thumbs = np.stack([loaded[i][0].thumbnail for i in ok]) if ok else np.zeros((0, THUMB, THUMB, 3), np.float32)
    pairs_local = near_duplicate_pairs(thumbs) if len(ok) > 1 else []
    pairs = [(ok[i], ok[j], s, t) for i, j, s, t in pairs_local]

    digests: dict[str, list[int]] = defaultdict(list)
    for i in ok:
        digests[loaded[i][0].digest].append(i)
    exact = [g for g in digests.values() if len(g) > 1]
    joined = [(a, b) for a, b, _, _ in pairs] + [(g[0], x) for g in exact for x in g[1:]]
    group_of = connected_groups(n, joined)

    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(group_of):
        members[g].append(i)
    groups = [m for m in members.values() if len(m) > 1]
    conflicting = [
        {"labels": sorted({samples[i].label for i in m}), "files": [str(samples[i].path) for i in m]}
        for m in groups if len({samples[i].label for i in m}) > 1
    ]

    matches: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for a, b, _, t in pairs:
        matches[a].append((b, t))
        matches[b].append((a, t))
    sizes = [facts.pixels if facts is not None else 0 for facts, _ in loaded]
    augmented = [str(s.path) for i, s in enumerate(samples)
                 if loaded[i][0] is not None and _is_augmented(s, i, matches, sizes)]

    return AuditReport(
        root=root, files=n,
        class_counts=dict(Counter(s.label for s in samples)),
        unreadable=unreadable,
        exact_duplicate_groups=[[str(samples[i].path) for i in g] for g in exact],
        near_duplicate_groups=[[str(samples[i].path) for i in m] for m in groups],
        near_duplicate_pairs=len(pairs),
        conflicting_groups=conflicting,
        augmented_copies=augmented,
        seconds=time.perf_counter() - start,
        group_of=group_of,
    )
