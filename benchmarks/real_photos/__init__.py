"""The real-photo development set: photos shipped offline by the pinned packages, with hand-drawn masks."""
