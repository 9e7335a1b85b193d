"""Ingest engines: who runs the model for `actstore ingest --engine ...`.

`local` (`local.run_local`) encodes in the calling process; `ray` (`ray_engine.run_ray`, needs
the `actstore[ray]` extra) encodes on Ray Data model actors. Both build on the same steps
(`actstore.ingest.steps`: planning, resume filtering, the key-guarded write, one commit per job
and width), so the store looks the same whichever engine filled it. The pipeline
(`actstore.ingest.pipeline`) picks one; no engine imports the pipeline.

The engine names (`--engine`) are `actstore.ingest.requests.ENGINES`: the steps check a request
against them, and the steps sit below the engines.
"""
