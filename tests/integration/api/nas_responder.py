"""A real UDP CoA peer for a daemon run in a private network namespace.

``python nas_responder.py SECRET PORT``: ACKs every verified request except those whose
Acct-Session-Id starts with ``nak-`` (NAK, Error-Cause 503). Uses the radius tests' pyrad
peer (``tests/integration/radius/fakenas.py``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "radius"))

from fakenas import Answer, FakeNas  # noqa: E402
from pyrad import packet as rp  # noqa: E402

from debtgate.radius.packets import load_dictionary  # noqa: E402


def policy(pkt: rp.CoAPacket, seen: int) -> Answer:
    sid = pkt["Acct-Session-Id"][0] if "Acct-Session-Id" in pkt else ""
    return Answer(ack=False, cause=503) if sid.startswith("nak-") else Answer()


async def main(secret: bytes, port: int) -> None:
    nas = FakeNas(secret, load_dictionary(), policy)
    loop = asyncio.get_running_loop()
    nas.transport, _ = await loop.create_datagram_endpoint(lambda: nas,
                                                           local_addr=("127.0.0.1", port))
    nas.other = nas.transport
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1].encode(), int(sys.argv[2])))
