"""HPACK header blocks (RFC 7541) decoded in one pass, on hpack's own table and errors."""

from __future__ import annotations

from hpack import Decoder, HeaderTuple, NeverIndexedHeaderTuple
from hpack.exceptions import HPACKDecodingError, InvalidTableSizeError, OversizedHeaderListError
from hpack.hpack import DEFAULT_MAX_HEADER_LIST_SIZE
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

__all__ = ["BlockDecoder"]

#: Entries of HPACK's static table (RFC 7541 appendix A): indices above it are the dynamic table's.
_STATIC_ENTRIES = HeaderTable.STATIC_TABLE_LENGTH


def _integer(data: bytes, at: int, mask: int) -> tuple[int, int]:
    """An HPACK integer (RFC 7541 5.1) whose prefix is ``mask`` at ``data[at]``: (value, next offset)."""
    value = data[at] & mask
    at += 1
    if value < mask:
        return value, at
    shift = 0
    end = len(data)
    while True:
        if at >= end:
            raise HPACKDecodingError("truncated integer in a header block")
        byte = data[at]
        at += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise HPACKDecodingError("an integer in a header block is too long")


def _string(data: bytes, at: int) -> tuple[bytes, int]:
    """An HPACK string literal (RFC 7541 5.2), Huffman-coded or not: (bytes, next offset)."""
    if at >= len(data):
        raise HPACKDecodingError("truncated header block")
    huffman = data[at] & 0x80
    length, at = _integer(data, at, 0x7F)
    end = at + length
    if end > len(data):
        raise HPACKDecodingError("truncated header block")
    raw = data[at:end]
    return (decode_huffman(raw) if huffman else raw), end


def _literal(table: HeaderTable, data: bytes, at: int, mask: int) -> tuple[bytes, bytes, int]:
    """A literal field (RFC 7541 6.2): the name by index (``mask``'s prefix) or as a string, the value."""
    index, at = _integer(data, at, mask)
    if index:
        name = table.get_by_index(index)[0]
    else:
        name, at = _string(data, at)
    value, at = _string(data, at)
    return name, value, at


class BlockDecoder(Decoder):
    """HPACK decoding (RFC 7541 6) of a whole block in one pass over the bytes.

    A push's header blocks come once per message, each way: the sender decodes the
    answers' (:mod:`notifier.sending.http2`), the simulator the requests'. hpack's
    decoder copies the rest of the block for each field and logs each one, several
    microseconds a block; this one walks the block by offset and keeps hpack's own
    dynamic table, limits and errors (``HPACKDecodingError`` and its kinds), so
    callers see the same fields, tuple kinds and failures. Raw bytes only (what h2
    asks for with ``header_encoding=None``); text goes to hpack's own decoder.
    """

    def __init__(self, max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE) -> None:
        super().__init__(max_header_list_size)
        # Indexed fields as the tuples they decode to (immutable: shared between blocks). Static
        # indices always name the same field; dynamic ones until the table changes.
        self._static: dict[int, HeaderTuple] = {}
        self._dynamic: dict[int, HeaderTuple] = {}

    @property  # type: ignore[override]
    def header_table_size(self) -> int:
        """The dynamic table's size (a change may evict entries: the dynamic memo is dropped)."""
        return self.header_table.maxsize

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        self.header_table.maxsize = value
        self._dynamic.clear()

    def decode(self, data, raw=False):  # type: ignore[no-untyped-def]
        """Decode one header block into ``(name, value)`` tuples of bytes."""
        if not raw:
            return super().decode(data, raw)
        data = bytes(data)
        table = self.header_table
        static, dynamic = self._static, self._dynamic
        limit = self.max_header_list_size
        headers: list[HeaderTuple] = []
        size = 0
        at, end = 0, len(data)
        while at < end:
            first = data[at]
            if first & 0x80:  # indexed field
                index, at = _integer(data, at, 0x7F)
                memo = static if index <= _STATIC_ENTRIES else dynamic
                header: HeaderTuple | None = memo.get(index)
                if header is None:
                    header = memo[index] = HeaderTuple(*table.get_by_index(index))
            elif first & 0x40:  # literal with incremental indexing
                name, value, at = _literal(table, data, at, 0x3F)
                table.add(name, value)
                dynamic.clear()  # every dynamic index moves by one
                header = HeaderTuple(name, value)
            elif first & 0x20:  # dynamic table size update: only before the first field
                if headers:
                    raise HPACKDecodingError("Table size update not at the start of the block")
                new_size, at = _integer(data, at, 0x1F)
                if new_size > self.max_allowed_table_size:
                    raise InvalidTableSizeError("Encoder exceeded max allowable table size")
                self.header_table_size = new_size
                continue
            else:  # literal without indexing (0000) or never indexed (0001)
                name, value, at = _literal(table, data, at, 0x0F)
                header = NeverIndexedHeaderTuple(name, value) if first & 0x10 else HeaderTuple(name, value)
            headers.append(header)
            size += 32 + len(header[0]) + len(header[1])
            if size > limit:
                raise OversizedHeaderListError(f"A header list larger than {limit} has been received")
        self._assert_valid_table_size()
        return headers
