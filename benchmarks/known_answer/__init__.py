"""A procedural world of labelled shapes with exact object masks.

No segmentation ground truth exists offline for ImageNet-like photos, so this world stands in for
it: classifiers trained on its images are explained like ImageNet classifiers, and the resulting
pseudo-labels are scored against masks that are exact by construction.
"""
