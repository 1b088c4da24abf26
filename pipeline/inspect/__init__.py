"""Reading a store for a person: the summary, --verify, pictures and the gallery."""
