"""Dataset tools: readers for the supported layouts, the audit (duplicates, conflicts, patients),
the leak-free split, training augmentation and the gate's synthetic negatives."""
