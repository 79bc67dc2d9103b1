"""The filesystem: the FUSE-free core and model, and the pyfuse3 adapter.

core.py answers every request (Filesystem); view.py, local.py, writer.py,
tagcopy.py and echo.py are its parts; notify.py tells the kernel what
changed; ops.py is the only module importing pyfuse3. May import the API
client, the store, sync, the cache, uploads, views and thumbnails; never the
daemon.
"""
