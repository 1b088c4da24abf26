"""How saliency maps are kept in the store and read back, shared by explain, fuse and inspect."""
