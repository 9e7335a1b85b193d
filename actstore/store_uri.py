"""Where a store lives: the default location, local directories and Lance object-store URIs, and
their options (the connection code in actstore/store/connection.py opens what this names).

A store is any URI Lance opens: a local path, `file://`, `s3://bucket/prefix` (AWS S3, MinIO,
Ceph, R2, ...), `s3+ddb://` (S3 with a DynamoDB commit store), `gs://`, `az://`/`abfss://`,
`memory://`. Credentials and endpoints come from the standard environment variables, which
Lance's object store reads itself (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ALLOW_HTTP`,
`GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, ...), and from `--storage-option
KEY=VALUE` pairs, which win over the environment (keys as Lance spells them: `aws_endpoint`,
`aws_region`, `allow_http`, `aws_access_key_id`, ...; see Lance's object-store docs).

Why the caveat in the README: Lance commits a new version on S3 with a conditional PUT
(`If-None-Match: *`). An S3-compatible server that ignores the header lets two writers both
"win" and one commit is silently lost; use `s3+ddb://` on such a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from actstore.errors import StoreError

#: where a store lives when no --db (nor $ACTSTORE_DB) is given; the one definition (the CLI's
#: option default and `Store.open` read it from here)
DEFAULT_URI = "./actstore.lance"

#: URI schemes Lance opens (object_store backends); anything else is a typo
SCHEMES = ("file", "memory", "s3", "s3+ddb", "gs", "az", "abfs", "abfss", "oss", "hf")


def check_uri(uri: str) -> str:
    """Return `uri` if Lance can open its scheme; raise StoreError naming the fix otherwise."""
    if "://" not in uri:
        return uri
    scheme, _, rest = uri.partition("://")
    if scheme.lower() not in SCHEMES:
        raise StoreError(
            f"--db {uri} uses the unknown scheme {scheme!r}; use a local directory or one of "
            f"{', '.join(s + '://' for s in SCHEMES)}."
        )
    if scheme.lower() not in ("file", "memory") and not rest.strip("/"):
        raise StoreError(f"--db {uri} names no bucket; pass e.g. {scheme}://my-bucket/actstore.")
    return uri


def parse_storage_options(pairs: Iterable[str] | None) -> dict[str, str]:
    """['aws_region=eu-west-1', 'allow_http=true'] -> {'aws_region': 'eu-west-1', ...}.

    Keys are lower-cased (Lance's names are); a later pair overrides an earlier one.
    """
    out: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StoreError(
                f"--storage-option {pair!r} is not KEY=VALUE; write e.g. "
                "--storage-option aws_region=eu-west-1."
            )
        out[key.lower()] = value.strip()
    return out


def object_store_reason(exc: BaseException) -> str:
    """The useful part of an object-store error: the S3 error code, else its first line."""
    text = str(exc)
    code = re.search(r"<Code>(\w+)</Code>", text)
    if code:
        return code.group(1)
    status = re.search(r"status: (\d{3})", text)
    first = text.splitlines()[0][:160] if text else type(exc).__name__
    return f"HTTP {status.group(1)}: {first}" if status else first
