"""actstore: pooled activations of multimodal, multilingual models in a LanceDB store.

The library core: the store (schema, reads, writes, SQL), the language catalogue and the CLI.
`ingest/`, `analyses/` and `reports/` build on this package and never on the CLI.
"""

__version__ = "0.1.0"
