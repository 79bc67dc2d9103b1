"""A local emulator of the Aionvision API: a real HTTP server for tests and the demo.

Layout: `state` (SQLite), `blobs` (object storage and presigned URLs),
`analysis` and `colors` (what the service computes from uploads),
`responses` (error shapes and request validation), `routes_*` (the
endpoints), `limits` (per-plan rate limits), `faults` (fault injection),
`app` (assembly), `server` (hypercorn under trio), `demo` (seed library).
It plays the service, so it imports nothing of the client side.
"""
