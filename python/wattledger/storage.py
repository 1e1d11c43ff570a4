"""Object storage inputs: the ``storage_options`` argument and ``--storage-option KEY=VALUE``.

Log paths may be URLs (``s3://bucket/prefix/``, ``gs://...``, ``az://...``,
``https://host/file.jsonl``); the engine lists and reads them (docs/object-storage.md). The
clients take their credentials, region and endpoint from the environment (``AWS_*``,
``GOOGLE_*``, ``AZURE_*``) and then from these options, named as the ``object_store`` crate
names its settings (``aws_endpoint``, ``aws_region``, ``aws_allow_http``, ...), which win.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from wattledger.errors import UsageError

#: Settings of the object storage clients (None: the environment's only).
StorageOptions = Mapping[str, str] | None


def storage_dict(options: StorageOptions) -> dict[str, str]:
    """The options as the engine takes them (it checks the keys: an unknown one is a
    :class:`UsageError`)."""
    return {str(k): str(v) for k, v in (options or {}).items()}


def parse_storage_options(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` texts (``--storage-option``, repeatable) as a dict; a later key wins."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"--storage-option {pair!r}: expected KEY=VALUE, e.g. --storage-option aws_region=eu-west-1"
            )
        out[key.strip()] = value
    return out
