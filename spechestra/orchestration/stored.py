"""What Prefect stores for us passes the key redaction first.

Persisted results (a build's, a perform's, each spec's and step's) carry text made by generated
code: test output, a step's outputs, error messages. Code can read a key from a file even in the
sandbox, so results are masked (`redaction.scrub`) before Prefect pickles them into its result
storage, as state messages, artifacts and logs are. A result read back holds `[redacted]` where
a key was; nothing reads a key back from a result.
"""

from __future__ import annotations

from typing import Any

from prefect.serializers import PickleSerializer

from .. import redaction


class RedactingPickle(PickleSerializer):
    """Prefect's pickle serializer (cloudpickle, base64) of a masked copy of the result.

    Its records say `"type": "pickle"`: what it writes is plain Prefect pickle, so any process
    reads it back with Prefect's own serializer (another machine's reader, a script that never
    imports this module). It is registered under a key of its own, never in place of Prefect's."""

    @classmethod
    def __dispatch_key__(cls) -> str:
        return "spechestra-redacting-pickle"

    def __init__(self, **data: Any):
        super().__init__(**{**data, "type": "pickle"})

    def dumps(self, obj: Any) -> bytes:
        return super().dumps(redaction.scrub(obj))
