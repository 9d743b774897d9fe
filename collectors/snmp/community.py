"""SNMPv1/v2c over UDP with the BER codec of ber.py: the transport of community devices.

The socket and the send / re-send flow are udp.py's (shared with SNMPv3, usm.py). Each try
carries a new request-id; datagrams that do not decode, carry another request-id or are not a
Response are dropped there.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from collectors.readings import PollError

from . import ber
from .udp import UdpExchange
from .values import END_OF_MIB_VIEW, Oidt, VarBind, format_oid

_NO_SUCH_NAME = 2  # SNMPv1's way of saying "no such OID" or, for GETNEXT, "end of MIB"


class CommunityTransport:
    """GET and GETBULK to one agent with a community; raises PollError on any failure."""

    def __init__(
        self,
        host: str,
        port: int,
        community: str,
        version: str,
        *,
        timeout: float,
        retries: int,
        silence_hint: str,
    ) -> None:
        self.host = host
        self.port = port
        self._community = community.encode()
        self._version = 0 if version == "1" else 1
        self._request_id = random.randrange(1, 2**31 - 1)
        self._udp = UdpExchange(
            host, port, timeout=timeout, retries=retries, silence_hint=silence_hint
        )

    def packets_sent(self) -> int:
        return self._udp.sent

    async def discover_engine_id(self) -> bytes:
        raise PollError("config", "SNMPv3 engine discovery on a community transport")

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]:
        if self._version == 0:
            return await self._v1_request(ber.GET, oids)
        return await self._exchange(ber.GET, oids)

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        if self._version == 0:  # SNMPv1 has no GETBULK: one row per request
            return await self._v1_request(ber.GETNEXT, oids)
        return await self._exchange(ber.GETBULK, oids, max_repetitions)

    def close(self) -> None:
        self._udp.close()

    async def _v1_request(self, pdu_type: int, oids: Sequence[Oidt]) -> list[VarBind]:
        """SNMPv1 fails a whole PDU with noSuchName for one OID; ask again without it, as
        pysnmp's RFC 2576 proxy and net-snmp do, and mark it missing (GET) or ended (GETNEXT)."""
        answers: dict[int, VarBind] = {}
        pending = list(range(len(oids)))
        while pending:
            try:
                varbinds = await self._exchange(pdu_type, [oids[i] for i in pending])
            except _NoSuchName as exc:
                index = pending.pop(exc.index)
                answers[index] = (oids[index], END_OF_MIB_VIEW if pdu_type == ber.GETNEXT else None)
                continue
            answers.update(zip(pending, varbinds, strict=False))
            break
        return [answers[i] for i in range(len(oids)) if i in answers]

    async def _exchange(
        self, pdu_type: int, oids: Sequence[Oidt], max_repetitions: int = 0
    ) -> list[VarBind]:
        tries: set[int] = set()

        def encode() -> bytes:
            self._request_id = self._request_id % (2**31 - 1) + 1
            tries.add(self._request_id)
            return ber.encode_request(
                self._version, self._community, pdu_type, self._request_id, oids, 0,
                max_repetitions,
            )  # fmt: skip

        def match(datagram: bytes) -> ber.Message | None:
            answer = ber.decode_message(datagram)
            if answer.request_id not in tries or answer.pdu_type != ber.RESPONSE:
                return None
            return answer

        return self._varbinds(await self._udp.exchange(encode, match), oids)

    def _varbinds(self, answer: ber.Message, oids: Sequence[Oidt]) -> list[VarBind]:
        status, index = answer.error_status, answer.error_index
        if status == _NO_SUCH_NAME and self._version == 0 and 0 < index <= len(oids):
            raise _NoSuchName(index - 1)
        if status:
            where = ""
            if 0 < index <= len(oids):
                where = f" at {format_oid(oids[index - 1])}"
            raise PollError(
                "protocol",
                f"agent {self.host}:{self.port} answered {ber.error_name(status)}{where}",
            )
        return answer.varbinds


class _NoSuchName(Exception):
    def __init__(self, index: int) -> None:
        self.index = index
