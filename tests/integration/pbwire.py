"""Just enough of the protobuf wire format for the tests that speak the
producer protocol by hand (README, "The producer protocol"): varints and
length-delimited fields, which is all an EventBatch and a BatchAck use."""


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(data, i):
    """(value, next index) of the varint at data[i]."""
    shift = v = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def fields(data):
    """[(field number, value)] of a message: ints for varints, bytes for
    length-delimited fields; any other wire type is an error."""
    i, out = 0, []
    while i < len(data):
        key, i = read_varint(data, i)
        if key & 7 == 0:
            v, i = read_varint(data, i)
        elif key & 7 == 2:
            n, i = read_varint(data, i)
            v, i = data[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type")
        out.append((key >> 3, v))
    return out
