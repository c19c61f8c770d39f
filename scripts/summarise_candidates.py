#!/usr/bin/env python
"""Mean over head seeds of ``scripts/compare_heads.py`` results, as a row of the README's candidate table.

    python scripts/summarise_candidates.py runs/compare_lite2_s*.json
"""
import json
import sys

import numpy as np


def main(paths: list[str]) -> None:
    runs = [r for p in paths for r in json.loads(open(p).read())]

    def mean(f) -> float:
        return float(np.mean([f(r) for r in runs]))

    def out(dataset: str, key: str):
        return lambda r: r["outside"][dataset][key]["value"]

    print(f"{len(runs)} runs: {', '.join(r['name'] for r in runs)}")
    print(f"validation macro-F1 {mean(lambda r: r['validation_macro_f1']):.3f} "
          f"(ODIR+EyePACS {mean(lambda r: r['validation_macro_f1_odir_eyepacs']):.3f}); "
          f"validation referable AUC {mean(lambda r: r['validation_referable_auc']):.3f}; "
          f"outside AUC pooled {mean(lambda r: r['outside_referable_auc_pooled']):.3f} "
          f"(Mexico {mean(out('mexico', 'referable_auc')):.3f} / HEI-MED {mean(out('heimed', 'referable_auc')):.3f}); "
          f"healthy called normal {mean(out('mexico', 'healthy_called_normal')):.2f} / "
          f"{mean(out('heimed', 'healthy_called_normal')):.2f}; referable flagged "
          f"{mean(out('mexico', 'referable_flagged')):.2f} / {mean(out('heimed', 'referable_flagged')):.2f}; "
          f"512↔1000 px same top {mean(lambda r: r['size_pairs']['same_top']):.2f}; "
          f"score {mean(lambda r: r['score']):.3f}; fit {mean(lambda r: r['seconds']):.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
