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
from pydantic import Field

from .. import redaction


class RedactingPickle(PickleSerializer):
    """Prefect's pickle serializer (cloudpickle, base64) of a masked copy of the result. Its own
    `type` so that a result record names it; reading back is plain unpickling."""

    type: str = Field(default="spechestra-redacting-pickle", frozen=True)

    def dumps(self, obj: Any) -> bytes:
        return super().dumps(redaction.scrub(obj))
