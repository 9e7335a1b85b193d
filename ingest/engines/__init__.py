"""Ingest engines: who runs the model for `actstore ingest --engine ...`.

`local` (`local.run_local`) encodes in the calling process; `ray` (`ray_engine.run_ray`, needs
the `actstore[ray]` extra) encodes on Ray Data model actors. Both build on the same steps
(`actstore.ingest.steps`: planning, resume filtering, the key-guarded write, one commit per job
and width), so the store looks the same whichever engine filled it. The pipeline
(`actstore.ingest.pipeline`) picks one; no engine imports the pipeline.

This `__init__` imports nothing, so the CLI reads `ENGINES` for `--engine` without loading an engine.
"""

#: ingest engines (`--engine`): who runs the model (planning and writing are shared)
ENGINES = ("local", "ray")
