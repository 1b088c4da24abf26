"""PSSL training: segmentation networks, the weighted loss, pre-training and fine-tuning."""
