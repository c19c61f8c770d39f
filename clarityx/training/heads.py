"""Heads fitted on cached pooled features, and the figures every candidate is judged on.

The bundled head reads the last map through BatchNorm → [max, mean] → Dense 512 ReLU → Dropout →
Dense softmax (:func:`clarityx.model.build.build_head`). With the backbone frozen and the head's
BatchNorm fixed to a per-channel standardisation (scale > 0, so max and mean commute with it), the
head is exactly a small network on the cached pooled vectors: :func:`seed_inputs` builds those
inputs, :func:`fit_seed_head` fits it in seconds, and :func:`install_seed_head` copies the result into
the Keras head, whose closed-form Grad-CAM (:mod:`clarityx.model.export`) then still holds.

:func:`outside_report` computes the outside-set figures of a candidate (healthy eyes called normal,
DR found, referable eyes flagged and healthy eyes not flagged at the card's threshold, the ROC AUC of
the referable score) with patient-bootstrap 95% intervals.
"""
from __future__ import annotations

import numpy as np

BN_EPSILON = 1e-3


# Stages whose max- and mean-pooled maps a head reads, by feature set (clarityx.training.views.pooled_extractor):
# "last": the last map only (the seed head); "multiscale": the last map and the ends of stages 6 and 5,
# which see small lesions (microaneurysms, exudates) that the last map blurs away.
FEATURE_SETS = {"last": ("last",), "multiscale": ("last", "s6", "s5")}


# A column's spread is floored at this share of the median spread of its stage and pooling. Without it, a
# channel that ReLU6 saturates on nearly every training photo (its max is 6.0 with a spread of 0.02) is
# divided by that tiny spread: the head then reacts 20-50 times more to it than to a typical column, so a
# photo where it is not saturated (another camera) moves the answer, and int8 export loses every other row of
# the Dense layer to that one row's range (v4 before the floor: one row 2.9, the median row 0.06).
SD_FLOOR = 0.5


def channel_stats(pooled: dict[str, np.ndarray], stages=FEATURE_SETS["last"], sd_floor: float = SD_FLOOR) -> dict:
    """Statistics of the training photos' pooled vectors (clean view), per stage: ``"bn"``, the per-channel
    mean and variance of the mean-pooled vectors (the head's BatchNorm), and per pooling (``"max"``,
    ``"mean"``) the per-column mean and standard deviation that standardise the head's inputs, each spread
    at least ``sd_floor`` times the median spread of its stage and pooling (:data:`SD_FLOOR`)."""
    out = {}
    for s in stages:
        entry = {"bn": (np.asarray(pooled[f"{s}_mean"], np.float64).mean(axis=0),
                        np.asarray(pooled[f"{s}_mean"], np.float64).var(axis=0) + 1e-4)}
        for kind in ("max", "mean"):
            x = np.asarray(pooled[f"{s}_{kind}"], np.float64)
            sd = x.std(axis=0)
            entry[kind] = (x.mean(axis=0), np.maximum(sd, sd_floor * np.median(sd)) + 1e-3)
        out[s] = entry
    return out


def seed_inputs(pooled: dict[str, np.ndarray], stats: dict) -> np.ndarray:
    """The head's inputs: every stage's max-pooled then mean-pooled vector, each column standardised on the
    training photos (:func:`channel_stats`). :func:`install_seed_head` folds the standardisation into the
    Keras head's BatchNorm and Dense weights."""
    def z(stage, kind):
        mu, sd = stats[stage][kind]
        return (pooled[f"{stage}_{kind}"] - mu) / sd
    return np.concatenate([z(s, "max") for s in stats] + [z(s, "mean") for s in stats], axis=1).astype(np.float32)




def _fit_member(x, y, x_val, y_val, num_classes, class_weight, seed, width, epochs, lr, weight_decay, patience,
                grades=None, grades_val=None, grade_weight=1.0, row_weights=None):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((x.shape[1],), name="pooled")
    emb = layers.Dense(width, activation="relu", name="embedding")(inputs)
    dropped = layers.Dropout(0.4)(emb)
    out = layers.Dense(num_classes, activation="softmax", name="probabilities")(dropped)
    # A row without a label of one output (-1) is kept for the other; its weight there is 0.
    cw = np.array([class_weight.get(c, 1.0) for c in range(num_classes)], np.float32)
    w = np.where(y >= 0, cw[np.maximum(y, 0)], 0.0).astype(np.float32)
    rw = np.ones(len(y), np.float32) if row_weights is None else np.asarray(row_weights, np.float32)
    w = w * rw
    w_val = (y_val >= 0).astype(np.float32)
    if grades is None:
        model = keras.Model(inputs, out)
        targets, weights = np.maximum(y, 0), w
        val = (x_val, np.maximum(y_val, 0), w_val)
    else:
        grade = layers.Dense(GRADES, activation="softmax", name="dr_grade")(dropped)
        model = keras.Model(inputs, {"probabilities": out, "dr_grade": grade})
        targets = {"probabilities": np.maximum(y, 0), "dr_grade": np.maximum(grades, 0)}
        weights = {"probabilities": w, "dr_grade": (grades >= 0).astype(np.float32) * grade_weight * rw}
        val = (x_val, {"probabilities": np.maximum(y_val, 0), "dr_grade": np.maximum(grades_val, 0)},
               {"probabilities": w_val, "dr_grade": (grades_val >= 0).astype(np.float32) * grade_weight})
    model.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=weight_decay),
                  loss="sparse_categorical_crossentropy")
    model.fit(x, targets, sample_weight=weights, validation_data=val, epochs=epochs, batch_size=128, verbose=0,
              shuffle=True,
              callbacks=[keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)])
    return model


# Outputs of the DR-grade layer: the international scale's grades 0 (none) to 4 (proliferative).
GRADES = 5


def fit_seed_head(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, num_classes: int,
                  class_weight: dict[int, float], seed: int = 0, epochs: int = 60, lr: float = 1e-3,
                  weight_decay: float = 1e-4, patience: int = 6, members: int = 4,
                  grades: np.ndarray | None = None, grades_val: np.ndarray | None = None, grade_weight: float = 1.0,
                  row_weights: np.ndarray | None = None):
    """The head's Dense layers on :func:`seed_inputs`, as an ensemble that fits the seed architecture.

    ``members`` networks of Dense (512 / members) ReLU → Dropout 0.4 → Dense softmax are fitted from
    different seeds (each keeps its weights of best validation loss); side by side they are one Dense 512
    ReLU layer, and averaging their logits is one Dense softmax layer, so the ensemble is exactly the seed
    head (Lakshminarayanan, Pritzel & Blundell, "Simple and scalable predictive uncertainty estimation
    using deep ensembles", NeurIPS 2017). One small head alone moved the outside figures by several
    points from seed to seed. Returns a Keras model with layers ``embedding`` and ``probabilities``.
    """
    import keras
    from keras import layers

    from clarityx.model.build import EMBEDDING_WIDTH

    width = EMBEDDING_WIDTH // members
    fitted = [_fit_member(x, y, x_val, y_val, num_classes, class_weight, seed * 1000 + m, width, epochs, lr,
                          weight_decay, patience, grades, grades_val, grade_weight, row_weights)
              for m in range(members)]
    w1 = np.concatenate([f.get_layer("embedding").get_weights()[0] for f in fitted], axis=1)
    b1 = np.concatenate([f.get_layer("embedding").get_weights()[1] for f in fitted])
    w2 = np.concatenate([f.get_layer("probabilities").get_weights()[0] for f in fitted], axis=0) / members
    b2 = np.mean([f.get_layer("probabilities").get_weights()[1] for f in fitted], axis=0)
    inputs = keras.Input((x.shape[1],), name="pooled")
    emb = layers.Dense(w1.shape[1], activation="relu", name="embedding")(inputs)
    probs = layers.Dense(num_classes, activation="softmax", name="probabilities")(emb)
    model = keras.Model(inputs, probs)
    if grades is not None:
        model = keras.Model(inputs, {"probabilities": probs,
                                     "dr_grade": layers.Dense(GRADES, activation="softmax", name="dr_grade")(emb)})
        model.get_layer("dr_grade").set_weights([
            np.concatenate([f.get_layer("dr_grade").get_weights()[0] for f in fitted], axis=0) / members,
            np.mean([f.get_layer("dr_grade").get_weights()[1] for f in fitted], axis=0)])
    model.get_layer("embedding").set_weights([w1, b1])
    model.get_layer("probabilities").set_weights([w2, b2])
    return model


def fit_grade_layer(embeddings: np.ndarray, grades: np.ndarray, C: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """A DR-grade layer on a fitted head's embedding: multinomial logistic regression (L2, inverse strength ``C``)
    from the rows with a known grade (``grades`` -1 elsewhere). Returns (weights (E, 5), bias (5,)); a grade no row
    has gets a bias that keeps its probability near 0."""
    from sklearn.linear_model import LogisticRegression

    known = grades >= 0
    lr = LogisticRegression(C=C, max_iter=3000).fit(embeddings[known], grades[known])
    w = np.zeros((embeddings.shape[1], GRADES), np.float32)
    b = np.full(GRADES, -30.0, np.float32)
    w[:, lr.classes_] = lr.coef_.T if len(lr.classes_) > 2 else np.column_stack([-lr.coef_[0], lr.coef_[0]]) / 2
    b[lr.classes_] = lr.intercept_ if len(lr.classes_) > 2 else np.array([-lr.intercept_[0], lr.intercept_[0]]) / 2
    return w, b


def grade_layer(fitted) -> tuple[np.ndarray, np.ndarray] | None:
    """(weights (512, 5), bias (5,)) of a multi-task head's DR-grade layer on the embedding, or None."""
    try:
        w, b = fitted.get_layer("dr_grade").get_weights()
    except ValueError:
        return None
    return np.asarray(w, np.float32), np.asarray(b, np.float32)


def fit_wide_term(x: np.ndarray, referable: np.ndarray, C: float = 1e-3) -> tuple[np.ndarray, float]:
    """The head's wide part: a logistic regression for referable DR (grade ≥ 2 against 0–1) on
    :func:`seed_inputs`, class-balanced, L2 strength ``1 / C``; returns (weights, bias) of its logit.

    Added to the DR logit (:func:`with_wide_term`), it ranks eyes by what a screening programme refers,
    learnt from every graded eye (the six-class head learns DR only against the other classes), beside the
    deep part — a wide-and-deep head (Cheng et al., "Wide & deep learning for recommender systems", DLRS 2016).
    """
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=C, max_iter=3000, class_weight="balanced").fit(x, referable.astype(int))
    return lr.coef_[0].astype(np.float32), float(lr.intercept_[0])


def with_wide_term(probs: np.ndarray, x: np.ndarray, wide: tuple[np.ndarray, float], column: int,
                   alpha: float) -> np.ndarray:
    """Probabilities with ``alpha`` times the wide term's logit added to class ``column``'s logit."""
    logits = np.log(np.clip(probs, 1e-12, None))
    logits[:, column] += alpha * (x @ wide[0] + wide[1])
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def install_seed_head(head, fitted, stats: dict) -> None:
    """Copy a :func:`fit_seed_head` model into the Keras head of :func:`build_head`.

    The backbone's map holds, channel-wise, the stages of :data:`clarityx.model.backbones.TAPS` (the last
    map; or the last map, stage 6, stage 5 average-pooled and stage 5 max-pooled to the last map's grid).
    The global max of the max-pooled stage-5 channels is stage 5's max, the global mean of its
    average-pooled channels its mean; the Dense rows of the two other combinations are set to zero, so the
    Keras head computes exactly what was fitted."""
    from clarityx.model.backbones import TAPS

    layout = TAPS["multiscale" if len(stats) > 1 else "last"]
    bn = head.get_layer("head_bn")
    if abs(bn.epsilon - BN_EPSILON) > 1e-12:
        raise ValueError(f"the head's BatchNorm epsilon {bn.epsilon} is not {BN_EPSILON}")
    # BatchNorm: z = γ (f − m) / s with s = √(v + ε) and γ = s / σ_ref, i.e. z = (f − m) / σ_ref, where σ_ref is
    # the spread of the pooling each channel mainly feeds (its max for the max-pooled stage-5 copy, its mean
    # otherwise). The Dense rows then only carry ratios of spreads near 1, which keeps the int8 export close.
    means, variances, gammas = [], [], []
    for stage, pooled_by in layout:
        m, v = stats[stage]["bn"]
        ref = stats[stage]["max" if pooled_by == "max" else "mean"][1]
        means.append(m)
        variances.append(v)
        gammas.append(np.sqrt(v + BN_EPSILON) / ref)
    means, variances, gammas = (np.concatenate(a) for a in (means, variances, gammas))
    channels = means.size
    bn.set_weights([gammas.astype(np.float32), np.zeros(channels, np.float32), means.astype(np.float32),
                    variances.astype(np.float32)])
    w, b = (np.asarray(t, np.float64) for t in fitted.get_layer("embedding").get_weights())
    sizes = {stage: stats[stage]["bn"][0].size for stage in stats}
    offset, blocks = 0, {}
    for kind in ("max", "mean"):
        for stage in stats:
            blocks[(stage, kind)] = w[offset:offset + sizes[stage]]
            offset += sizes[stage]
    # The fitted input (f − μ)/σ equals z · σ_ref/σ plus (m − μ)/σ.
    full = np.zeros((2 * channels, w.shape[1]), np.float64)
    start = 0
    for stage, pooled_by in layout:
        n = sizes[stage]
        m = stats[stage]["bn"][0]
        ref = stats[stage]["max" if pooled_by == "max" else "mean"][1]
        for k, kind in enumerate(("max", "mean")):
            if pooled_by in ("any", kind):  # "max": max-pooled channels; "mean": average-pooled ones
                mu, sd = stats[stage][kind]
                block = blocks[(stage, kind)]
                full[k * channels + start:k * channels + start + n] = block * (ref / sd)[:, None]
                b = b + ((m - mu) / sd) @ block
        start += n
    head.get_layer("embedding").set_weights([full.astype(np.float32), b.astype(np.float32)])
    head.get_layer("probabilities").set_weights(fitted.get_layer("probabilities").get_weights())


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    positive = np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, scores))


def outside_figures(probs: np.ndarray, photos, classes: list[str], threshold: float | None,
                    accepted: np.ndarray | None = None, rounds: int = 1000, scores: np.ndarray | None = None,
                    thresholds: dict[str, float] | None = None) -> dict:
    """Figures of one outside set (photos: :class:`clarityx.data.external.OutsidePhoto`), each with a
    patient-bootstrap 95% interval. ``accepted`` (bool per photo) adds the gate's acceptance; ``scores`` are the
    referable scores (default: those of ``probs``); ``thresholds`` adds the flag's figures at other thresholds
    (``{"fitted_without_this_set": t}``: the threshold fitted on validation and the other outside sets)."""
    from clarityx.screening.grades import referable_scores
    from clarityx.training.metrics import bootstrap_interval

    probs = np.asarray(probs)
    top = probs.argmax(axis=1)
    score = referable_scores(probs, classes) if scores is None else np.asarray(scores)
    healthy = np.array([p.healthy for p in photos])
    referable = np.array([p.referable for p in photos])
    dr = ~healthy
    groups = [p.patient for p in photos]
    normal = classes.index("normal") if "normal" in classes else -1
    dr_col = classes.index("diabetic_retinopathy") if "diabetic_retinopathy" in classes else -1
    flagged = score >= threshold if (score is not None and threshold is not None) else None

    def share(mask_fn, base):
        def stat(idx):
            b = base[idx]
            return float(mask_fn(idx)[b].mean()) if b.any() else float("nan")
        return stat

    stats = {}
    if normal >= 0:
        stats["healthy_called_normal"] = (share(lambda i: top[i] == normal, healthy), healthy)
    if dr_col >= 0:
        stats["dr_found"] = (share(lambda i: top[i] == dr_col, dr), dr)
    if flagged is not None:
        stats["referable_flagged"] = (share(lambda i: flagged[i], referable), referable)
        stats["healthy_not_flagged"] = (share(lambda i: ~flagged[i], healthy), healthy)
    for name, t in (thresholds or {}).items():
        if score is not None:
            at = score >= t
            stats[f"referable_flagged_{name}"] = (share(lambda i, at=at: at[i], referable), referable)
            stats[f"healthy_not_flagged_{name}"] = (share(lambda i, at=at: ~at[i], healthy), healthy)
    if accepted is not None:
        everyone = np.ones(len(photos), bool)
        stats["accepted"] = (share(lambda i: accepted[i], everyone), everyone)
    out: dict = {"photos": len(photos), "healthy": int(healthy.sum()), "referable": int(referable.sum())}
    for name, (stat, base) in stats.items():
        value = stat(np.arange(len(photos)))
        out[name] = {"value": value, "n": int(base.sum()),
                     "ci95": bootstrap_interval(stat, len(photos), groups, rounds=rounds)}
    if score is not None:
        both = healthy | referable

        def auc(idx):
            idx = idx[both[idx]]
            return _auc(score[idx], referable[idx])
        out["referable_auc"] = {"value": auc(np.arange(len(photos))), "n": int(both.sum()),
                                "ci95": bootstrap_interval(auc, len(photos), groups, rounds=rounds)}
        if healthy.any():
            out["healthy_median_score"] = float(np.median(score[healthy]))
    for name, t in (thresholds or {}).items():
        out[f"threshold_{name}"] = float(t)
    return out


def embedding_model(fitted):
    """``pooled inputs → 512-d embedding`` of a :func:`fit_seed_head` model, as a numpy function."""
    w, b = fitted.get_layer("embedding").get_weights()
    return lambda x: np.maximum(np.asarray(x, np.float32) @ w + b, 0.0)


# The gate's out-of-distribution limit: this quantile of the Mahalanobis distances of the *augmented*
# training views (other exposures, colours, resolutions and encodings than the clean photos), so that a
# fundus photo is not refused for its camera alone.
OOD_QUANTILE = 0.999


def ood_limit(distances_of_views: np.ndarray) -> float:
    return float(np.quantile(np.asarray(distances_of_views), OOD_QUANTILE))
