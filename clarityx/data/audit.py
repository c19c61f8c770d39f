"""Dataset audit: unreadable files, exact and near-duplicates, conflicting labels,
pre-made augmented copies. Runs before every training and on its own
(``clarityx audit DIR``).

Near-duplicates are found on 64 px thumbnails taken after the same field-of-view
crop the model uses (so a re-cropped or re-encoded copy still matches), compared
under the 8 flips/rotations so that flipped or rotated copies are found too. Two
cosines must both agree: the mean-centred colour thumbnail (overall look) and a
high-pass grey thumbnail (the vessel tree, which differs between any two eyes).
The colour cosine alone chained different eyes of different patients that merely
share a camera. Validated by ``scripts/validate_duplicates.py`` on known true
duplicates (the same ODIR-5K photo in two datasets, flipped and rotated copies)
and on known distinct eyes (different patients): it prints the recall on the first and the false
matches on the second (no figures are recorded in the repository; run it on your data).
"""
from __future__ import annotations

import hashlib
import json
import re
import time
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from clarityx.data.datasets import PATIENT_NAMING_HELP, Sample
from clarityx.screening.errors import ImageRejected, ImageTooLarge, ImageTooSmall
from clarityx.screening.imageio import MAX_FILE_BYTES, MIN_SIDE, load_image, open_image
from clarityx.screening.preprocess import prepare

THUMB = 64
NEAR_DUPLICATE_COSINE = 0.98   # mean-centred colour thumbnail
VESSEL_COSINE = 0.75           # high-pass grey thumbnail (Gaussian sigma 3 px removed)
HIGHPASS_SIGMA = 3.0
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
    if len(data) > MAX_FILE_BYTES:
        raise ImageTooLarge(f"{path.name}: over the {MAX_FILE_BYTES / 2**20:.0f} MB limit")
    try:
        with warnings.catch_warnings():
            # Before the file is opened: Pillow warns about a decompression bomb in Image.open itself.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_image(data) as im:
                pixels = im.width * im.height
                if min(im.size) < MIN_SIDE:  # training and screening refuse it: so does the audit
                    raise ImageTooSmall(f"{path.name}: {im.width}×{im.height} pixels, under the {MIN_SIDE}-pixel "
                                        "short side needed to see the retina")
                im.draft("RGB", (2 * THUMB, 2 * THUMB))
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"{path.name}: too large to open safely") from exc
    if min(rgb.shape[:2]) < 2 * THUMB:  # small files: go through the full, validating path
        rgb = load_image(data)
    return FileFacts(prepare(rgb, THUMB).astype(np.float32), hashlib.sha1(data).hexdigest(), pixels)


def _normalise(v: np.ndarray) -> np.ndarray:
    v = v - v.mean(axis=1, keepdims=True)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)


def vessel_thumbnails(thumbs: np.ndarray, sigma: float = HIGHPASS_SIGMA) -> np.ndarray:
    """High-pass grey thumbnails ``(N, T, T, 1)``: fine structure (vessels), rim masked out."""
    n, t = thumbs.shape[:2]
    yy, xx = np.mgrid[:t, :t]
    inside = np.hypot(yy - t / 2 + 0.5, xx - t / 2 + 0.5) <= 0.42 * t
    out = np.empty((n, t, t, 1), np.float32)
    for i, thumb in enumerate(thumbs):
        grey = thumb.mean(axis=2).astype(np.float32)
        out[i, ..., 0] = (grey - cv2.GaussianBlur(grey, (0, 0), sigma)) * inside
    return out


def dihedral(thumbs: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of a stack of square thumbnails ``(N, T, T, C)``."""
    out = []
    for k in range(4):
        r = np.rot90(thumbs, k, axes=(1, 2))
        out.extend([r, r[:, :, ::-1]])
    return out


def near_duplicate_pairs(thumbs: np.ndarray, threshold: float = NEAR_DUPLICATE_COSINE,
                         vessel_threshold: float = VESSEL_COSINE,
                         chunk: int = 1024) -> list[tuple[int, int, float, int]]:
    """Pairs ``(i, j, cosine, transform)`` with i < j whose thumbnails match: colour cosine above
    ``threshold`` and vessel (high-pass) cosine above ``vessel_threshold`` under one transform.

    ``transform`` is the index (0 = identity) of the flip/rotation of j that matched i best.
    """
    n = len(thumbs)
    small = np.stack([cv2.resize(t, (32, 32), interpolation=cv2.INTER_AREA) for t in thumbs])
    vessels = vessel_thumbnails(thumbs)
    base_c = _normalise(small.reshape(n, -1))
    base_v = _normalise(vessels.reshape(n, -1))
    best: dict[tuple[int, int], tuple[float, int]] = {}
    for t, (var_c, var_v) in enumerate(zip(dihedral(small), dihedral(vessels))):
        var_c = _normalise(np.ascontiguousarray(var_c).reshape(n, -1))
        var_v = _normalise(np.ascontiguousarray(var_v).reshape(n, -1))
        for start in range(0, n, chunk):
            sims = base_v[start:start + chunk] @ var_v.T
            rows, cols = np.nonzero(sims > vessel_threshold)
            for r, c in zip(rows + start, cols):
                if r == c:
                    continue
                colour = float(base_c[r] @ var_c[c])
                if colour <= threshold:
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
    patients: int = 0                       # distinct patient ids the dataset names
    patients_with_several_photos: int = 0   # kept whole by the split (never straddle)
    patients_straddling_given_splits: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Per sample (same order as the samples audited): its duplicate group id.
    group_of: list[int] = field(default_factory=list, repr=False)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("group_of")
        return json.dumps(data, indent=2)

    def patients_line(self) -> str:
        """The patients in a line; when the file names name none, that said plainly with how to give them."""
        if not self.patients:
            return ("Patients: no patient ids found in the file names, so each photo is split on its own and "
                    "two photos of one eye could land in training and test. " + PATIENT_NAMING_HELP)
        return (f"Patients: {self.patients} ({self.patients_with_several_photos} with several photos, "
                "kept in one split); patients straddling the dataset's own splits: "
                f"{len(self.patients_straddling_given_splits)}")

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
                     f"({self.near_duplicate_pairs} pairs: colour cosine > {NEAR_DUPLICATE_COSINE} and "
                     f"vessel cosine > {VESSEL_COSINE} on {THUMB} px thumbnails, flips/rotations included)")
        lines.append(f"Groups carrying different labels: {len(self.conflicting_groups)}")
        for g in self.conflicting_groups[:30]:
            lines.append(f"  {g['labels']}: " + ", ".join(g['files'][:4]) + (" ..." if len(g['files']) > 4 else ""))
        lines.append(self.patients_line())
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

    photos_of: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if s.group:
            photos_of[s.group].append(s)
    straddling = sorted(p for p, ss in photos_of.items() if len({s.split for s in ss} - {None}) > 1)

    return AuditReport(
        root=root, files=n,
        patients=len(photos_of),
        patients_with_several_photos=sum(len(ss) > 1 for ss in photos_of.values()),
        patients_straddling_given_splits=straddling,
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


def data_decisions(dr_grade0: str, dr_ungraded: str, keep_augmented: bool, task: str = "conditions") -> list[str]:
    """How the known defects of the training data were handled, in words, for the card."""
    grade0 = {"normal": "relabelled normal (so the normal class spans two cameras, not one)",
              "drop": "dropped", "keep": "kept as diabetic retinopathy"}[dr_grade0]
    if task == "dr-grade":
        labels = ["Each eye is labelled by its diabetic-retinopathy grade 0-4 where one is known (EyePACS and "
                  "APTOS grades, ODIR-5K's staged keywords); eyes without a grade, or with another condition "
                  "such as a cataract, are left out."]
    else:
        labels = [f"Diabetic-retinopathy photos whose public EyePACS grade is 0 (no DR) are {grade0}.",
                  "Diabetic-retinopathy photos without a public grade are "
                  + ("dropped: most graded ones are grade 0, so their label cannot be trusted."
                     if dr_ungraded == "drop" else "kept (their labels are noisy).")]
    return [
        "Both eyes of a patient (and every photo of one) stay in one split; two eyes may carry different "
        "labels and are kept.",
        f"Exact and near-duplicate photos (colour cosine > {NEAR_DUPLICATE_COSINE} and vessel cosine > "
        f"{VESSEL_COSINE} on 64 px thumbnails, flips and rotations included) are grouped the same way.",
        "One photo (or its near-duplicates) under different labels is dropped from every split.",
        "A photo reached through two datasets (eye_diseases' ODIR files are ODIR-5K files) is read once, "
        "with ODIR-5K's per-eye label.",
        "Pre-made augmented copies are " + ("used for training only." if keep_augmented else "excluded."),
        *labels,
        "Splits are stratified by (label, source), and metrics are reported per source.",
    ]
