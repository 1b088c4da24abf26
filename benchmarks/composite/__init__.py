"""The composite world: real photo cut-outs with exact masks pasted on real photo backgrounds.

Debian's tuxpaint-stamps-default ships photo cut-outs whose alpha channel is the object's mask. Pasted by
code onto photos that show no ImageNet object of their own, alone or with objects of other classes beside,
behind or in front of them, they make scenes whose target mask is exact (its visible pixels after
compositing). Nothing of the packages is committed: the reviewed class table (classes.yaml), the background
table (backgrounds.yaml) and the generator are. docs/composite_world.md describes the world.

    .venv/bin/python -m benchmarks.composite build runs/composite [--split tuning|heldout|all]
    .venv/bin/python -m benchmarks.composite sheet runs/composite docs/img/composite_world.png
"""
