"""HPACK (RFC 7541) for the server side of the fakes, tuned for many small requests.

The ``hpack`` package is correct but costs more per request than the whole rest of a fake's
work; this decoder keeps the same rules (dynamic table, size updates, Huffman strings) with a
byte-at-a-time Huffman table and a cache for repeated strings. The static table and the Huffman
code come from the ``hpack`` package so the constants are not retyped here. The encoder never
indexes and never uses Huffman: the fakes answer with a handful of short headers.
"""

from __future__ import annotations

from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = tuple(HeaderTable.STATIC_TABLE)
STATIC_LEN = len(STATIC_TABLE)
ENTRY_OVERHEAD = 32
EOS = 256


class HpackError(Exception):
    """The header block cannot be decoded: a COMPRESSION_ERROR for the connection."""


# Huffman tree: node 0 is the root; children[2 * node + bit]; leaf nodes carry a symbol.
def _build_tree() -> tuple[list[int], list[int], list[int], list[bool]]:
    children = [-1, -1]
    symbol = [-1]
    depth = [0]
    all_ones = [True]
    for sym, (code, length) in enumerate(zip(REQUEST_CODES, REQUEST_CODES_LENGTH, strict=True)):
        node = 0
        for i in range(length - 1, -1, -1):
            bit = (code >> i) & 1
            nxt = children[2 * node + bit]
            if nxt < 0:
                nxt = len(symbol)
                children[2 * node + bit] = nxt
                children.extend((-1, -1))
                symbol.append(-1)
                depth.append(depth[node] + 1)
                all_ones.append(all_ones[node] and bit == 1)
            node = nxt
        symbol[node] = sym
    return children, symbol, depth, all_ones


_CHILDREN, _SYMBOL, _DEPTH, _ALL_ONES = _build_tree()
# Transitions (state, byte) -> (next state, emitted bytes), filled on first use: only a few
# hundred of the 65,536 pairs ever occur, so building them all up front would waste start-up.
_FAIL = (-1, b"")
_TRANSITIONS: list[tuple[int, bytes] | None] = [None] * (len(_SYMBOL) * 256)
_HUFFMAN_CACHE: dict[bytes, bytes] = {}
_HUFFMAN_CACHE_MAX = 8192


def _transition(state: int, byte: int) -> tuple[int, bytes]:
    node = state
    out = bytearray()
    for i in range(7, -1, -1):
        node = _CHILDREN[2 * node + ((byte >> i) & 1)]
        if node < 0:
            result = _FAIL
            break
        sym = _SYMBOL[node]
        if sym >= 0:
            if sym == EOS:
                result = _FAIL
                break
            out.append(sym)
            node = 0
    else:
        result = (node, bytes(out))
    _TRANSITIONS[state * 256 + byte] = result
    return result


def huffman_decode(data: bytes) -> bytes:
    cached = _HUFFMAN_CACHE.get(data)
    if cached is not None:
        return cached
    table = _TRANSITIONS
    state = 0
    parts = []
    for byte in data:
        entry = table[state * 256 + byte] or _transition(state, byte)
        state, out = entry
        if state < 0:
            raise HpackError("invalid Huffman code")
        if out:
            parts.append(out)
    # Padding is the most significant bits of EOS (all ones), strictly shorter than a byte.
    if state and not (_ALL_ONES[state] and _DEPTH[state] <= 7):
        raise HpackError("invalid Huffman padding")
    result = b"".join(parts)
    if len(_HUFFMAN_CACHE) >= _HUFFMAN_CACHE_MAX:
        _HUFFMAN_CACHE.clear()
    _HUFFMAN_CACHE[data] = result
    return result


class HpackDecoder:
    def __init__(self, max_table_size: int = 4096, max_header_list_size: int = 65536) -> None:
        # Newest entry last: dynamic index i (1-based) is self._table[-i].
        self._table: list[tuple[bytes, bytes]] = []
        self._size = 0
        self._max_size = max_table_size
        self._settings_max = max_table_size
        self._max_list = max_header_list_size

    def _add(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + ENTRY_OVERHEAD
        table = self._table
        while table and self._size + size > self._max_size:
            old_name, old_value = table.pop(0)
            self._size -= len(old_name) + len(old_value) + ENTRY_OVERHEAD
        if size <= self._max_size:
            table.append((name, value))
            self._size += size

    def _resize(self, new_max: int) -> None:
        if new_max > self._settings_max:
            raise HpackError("table size update above the advertised limit")
        self._max_size = new_max
        table = self._table
        while table and self._size > new_max:
            old_name, old_value = table.pop(0)
            self._size -= len(old_name) + len(old_value) + ENTRY_OVERHEAD

    def _entry(self, index: int) -> tuple[bytes, bytes]:
        if 0 < index <= STATIC_LEN:
            return STATIC_TABLE[index - 1]
        dyn = index - STATIC_LEN
        if 0 < dyn <= len(self._table):
            return self._table[-dyn]
        raise HpackError(f"header index {index} out of range")

    def decode(self, data: bytes) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        pos = 0
        end = len(data)
        total = 0
        seen_field = False
        try:
            while pos < end:
                first = data[pos]
                if first & 0x80:
                    index = first & 0x7F
                    pos += 1
                    if index == 0x7F:
                        index, pos = _decode_int_tail(data, pos, index)
                    if index == 0:
                        raise HpackError("index 0")
                    field = self._entry(index)
                    headers.append(field)
                    seen_field = True
                    total += len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
                    continue
                if first & 0x40:
                    mask, indexing = 0x3F, True
                elif first & 0x20:
                    if seen_field:
                        raise HpackError("table size update after a header field")
                    size = first & 0x1F
                    pos += 1
                    if size == 0x1F:
                        size, pos = _decode_int_tail(data, pos, size)
                    self._resize(size)
                    continue
                else:
                    mask, indexing = 0x0F, False
                index = first & mask
                pos += 1
                if index == mask:
                    index, pos = _decode_int_tail(data, pos, index)
                if index:
                    name = self._entry(index)[0]
                else:
                    name, pos = _decode_string(data, pos)
                value, pos = _decode_string(data, pos)
                if indexing:
                    self._add(name, value)
                headers.append((name, value))
                seen_field = True
                total += len(name) + len(value) + ENTRY_OVERHEAD
            if total > self._max_list:
                raise HpackError("header list too large")
        except IndexError as exc:
            raise HpackError("truncated header block") from exc
        return headers


def _decode_int_tail(data: bytes, pos: int, value: int) -> tuple[int, int]:
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise HpackError("integer too large")


def _decode_string(data: bytes, pos: int) -> tuple[bytes, int]:
    first = data[pos]
    length = first & 0x7F
    pos += 1
    if length == 0x7F:
        length, pos = _decode_int_tail(data, pos, length)
    stop = pos + length
    if stop > len(data):
        raise HpackError("truncated string")
    raw = data[pos:stop]
    if first & 0x80:
        raw = huffman_decode(raw)
    return raw, stop


def encode_int(value: int, prefix_bits: int, first_bits: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first_bits | value,))
    out = bytearray((first_bits | limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _static_name_index() -> dict[bytes, int]:
    index: dict[bytes, int] = {}
    for i, (name, _value) in enumerate(STATIC_TABLE, start=1):
        index.setdefault(name, i)
    return index


_STATIC_NAMES = _static_name_index()
_STATUS_FIELDS: dict[int, bytes] = {
    int(value): bytes((0x80 | i,))
    for i, (name, value) in enumerate(STATIC_TABLE, start=1)
    if name == b":status"
}
_NAME_PREFIX: dict[bytes, bytes] = {}


def _name_prefix(name: bytes) -> bytes:
    """The representation of ``name`` in a literal field without indexing."""
    prefix = _NAME_PREFIX.get(name)
    if prefix is None:
        index = _STATIC_NAMES.get(name)
        if index is not None:
            prefix = encode_int(index, 4)
        else:
            prefix = b"\x00" + encode_int(len(name), 7) + name
        if len(_NAME_PREFIX) < 1024:
            _NAME_PREFIX[name] = prefix
    return prefix


def status_field(status: int) -> bytes:
    field = _STATUS_FIELDS.get(status)
    if field is None:
        value = str(status).encode()
        field = encode_int(8, 4) + encode_int(len(value), 7) + value
        _STATUS_FIELDS[status] = field
    return field


def encode_field(name: bytes, value: bytes) -> bytes:
    length = len(value)
    if length < 0x7F:
        return _name_prefix(name) + bytes((length,)) + value
    return _name_prefix(name) + encode_int(length, 7) + value


def encode_response(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    parts = [status_field(status)]
    for name, value in headers:
        parts.append(encode_field(name, value))
    return b"".join(parts)
