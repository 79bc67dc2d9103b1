"""The filesystem: a FUSE-free model of the library (view) and the pyfuse3 adapter (ops)."""
