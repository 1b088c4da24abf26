"""The index stage: every input image recorded in the store (path, class, size, status)."""
