"""The fuse stage: the stored maps of every member become labels and confidence weights."""
