"""actstore: pooled activations of multimodal, multilingual models in a LanceDB store.

This package is the core (store, schema, catalogue, SQL, errors) and the CLI; `actstore.ingest`,
`actstore.analyses` and `actstore.reports` build on the core and never on the CLI, which alone
imports them all (docs/ARCHITECTURE.md, "Layers").
"""

__version__ = "0.1.0"
