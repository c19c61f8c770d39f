"""What ``train.py`` and ``clarityx evaluate`` share: data loading and fitting steps, metrics with
intervals, and the screening report that goes into a model card."""
