"""Ray for the stages: starting or joining it, and telling a worker's failure in one line."""
