"""Label quality on every yardstick at once, with the uncertainty of each difference and the cost of each recipe.

A yardstick is a store of maps with its ground truth: the real-photo development set (its tuning half and the
half kept for reporting), the known-answer world's tuning and held-out splits, and the composite world of real
cut-outs on real photos (tuning and held-out; single- and multi-object scenes apart). A recipe is a set of
members (how many of the store's models, which explainers), a fuse rule, and so a cost: the passes per image
`pipeline plan` counts for it. Every recipe's labels are made in memory from the stored maps by the fuse stage's
own code, so a recipe costs seconds per yardstick, not an explain run.

    .venv/bin/python -m benchmarks.yardsticks --config conf/yardsticks.yaml    # results/yardsticks.md + .json
"""
