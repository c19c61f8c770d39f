#!/usr/bin/env bash
# Fetch the two public sets the model v5 recipe names (both CC BY 4.0), into ../fetched beside the checkout
# (never into the repository):
#
#   IDRiD  (Porwal et al., Data 3(3) 2018; India, Kowa VX-10α)  from github.com/imsaksham-c/EyeDisease_IDRiD,
#          "dataset/B. Disease Grading/": 516 photos with DR grade and macular-oedema risk -> ../fetched/idrid
#   ACRIMA (Diaz-Pinto et al., BioMed Eng OnLine 18:29 2019; Spain) from github.com/NitinSN18/glaucoma-detection,
#          "archive/Database/Images/": 705 optic-disc crops, glaucoma files named _g_          -> ../fetched/acrima
#
#   bash scripts/fetch_outside.sh            # needs git and internet access; a set already there is kept
#   FETCHED=/elsewhere bash scripts/fetch_outside.sh
#
# Fetch nothing else of outside fundus data: other public sets are the hidden outside test.
set -euo pipefail
cd "$(dirname "$0")/.."
FETCHED=${FETCHED:-../fetched}
mkdir -p "$FETCHED"

fetch() {  # fetch REPOSITORY FOLDER TARGET
    local repo=$1 folder=$2 target=$3 tmp
    if [[ -d "$target" ]] && [[ -n "$(ls -A "$target")" ]]; then
        echo "$target: already there"
        return
    fi
    tmp=$(mktemp -d)
    if ! git clone --quiet --depth 1 --filter=blob:none --sparse "https://github.com/$repo" "$tmp/repo" 2>"$tmp/err"; then
        echo "error: could not fetch github.com/$repo ($(tail -1 "$tmp/err")). It needs internet access; or copy" \
             "the folder '$folder' of that repository into $target by hand." >&2
        rm -rf "$tmp"
        exit 1
    fi
    git -C "$tmp/repo" sparse-checkout set "$folder"
    mkdir -p "$target"
    cp -r "$tmp/repo/$folder" "$target/$(dirname "$folder")/" 2>/dev/null || {
        mkdir -p "$target/$(dirname "$folder")"; cp -r "$tmp/repo/$folder" "$target/$(dirname "$folder")/"; }
    rm -rf "$tmp"
    echo "$target: fetched from github.com/$repo"
}

fetch imsaksham-c/EyeDisease_IDRiD "dataset/B. Disease Grading" "$FETCHED/idrid"
fetch NitinSN18/glaucoma-detection "archive/Database/Images" "$FETCHED/acrima"

# The fit reads IDRiD at a quarter of its resolution (1072×712; its field of view stays above twice the model's
# 384 px), decoded once with libjpeg's DCT scaling: caching 4288 px photos would take most of the recipe's time.
# `clarityx evaluate --idrid ../fetched/idrid` reports its test part from the originals, through the app's path.
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" - "$FETCHED/idrid" "$FETCHED/idrid_quarter" <<'PY'
import shutil
import sys
from pathlib import Path

from PIL import Image

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for p in sorted(src.rglob("*")):
    q = dst / p.relative_to(src)
    if p.is_dir() or q.exists():
        continue
    q.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".jpg":
        with Image.open(p) as im:
            im.draft("RGB", (im.width // 4, im.height // 4))
            im.convert("RGB").save(q, quality=95)
    else:
        shutil.copy(p, q)
print(f"{dst}: IDRiD at a quarter of its resolution")
PY
