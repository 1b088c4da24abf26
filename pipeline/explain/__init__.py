"""The explain stage: Ray workers run each classifier's explainers (and the object model) over shards."""
