"""Real scale-out parts for the `s3` and `ray` tests: a local S3 server and a local Ray cluster.

- `s3_server`: moto's threaded S3-compatible server on 127.0.0.1 (a free port), which honours
  conditional PUT (`If-None-Match`) like AWS S3, so Lance's commits behave as on S3;
- `s3_env(server, monkeypatch)`: the standard AWS_* variables pointing at it (undone after the
  test or module) and a fresh bucket;
- `ray_cluster`: a local Ray with 2 CPUs, shut down at the end.

Import the fixtures into a test module (`from _cloud import ...`), like `_models`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MINILM = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def s3_server():
    """http://127.0.0.1:PORT of a moto S3 server running in this process's threads."""
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


def make_bucket(endpoint: str, prefix: str = "actstore") -> str:
    """A new bucket on the server; returns its name."""
    import boto3

    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def s3_env(s3_server):
    """The AWS_* variables set for this module's tests only, and a fresh bucket (its name)."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in aws_env(s3_server).items():
            mp.setenv(k, v)
        yield make_bucket(s3_server)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster with 2 CPUs; yields its GCS address (for drivers in subprocesses)."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # subprocess drivers join without a token
        if ray.is_initialized():
            ray.shutdown()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 object_store_memory=300 * 2**20)  # a shared test machine: small shared-memory store
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    env.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    env.update(extra)
    return env


def start_cli(args: list[str], **env: str) -> subprocess.Popen:
    """`actstore ARGS` in its own process group (so a kill takes Ray's children with it)."""
    return subprocess.Popen([sys.executable, "-m", "actstore.cli", *args], cwd=REPO,
                            env=subprocess_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a process and everything in its group (Ray daemons outlive a killed driver)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def wait_for(predicate, timeout: float, interval: float = 0.05, proc: subprocess.Popen | None = None) -> bool:
    """Poll `predicate` until true (True) or timeout / the process exits first (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(predicate())
        time.sleep(interval)
    return False
