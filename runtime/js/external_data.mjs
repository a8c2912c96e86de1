// Refuse ONNX graphs whose tensors keep their data in another file (ONNX "external data"): the twin of
// runtime/external_data.py. A bundle's checksums cover only the files it lists, and onnxruntime-node would read
// such data from a path the graph names, relative to the process's working folder. A few lines of protobuf reading.

// Message -> {field number: message type of that field}, for the fields that can lead to a TensorProto
// (see runtime/external_data.py for the onnx.proto3 names).
const FIELDS = {
  model: { 7: 'graph', 25: 'function' },
  graph: { 1: 'node', 5: 'tensor', 15: 'sparse' },
  function: { 7: 'node' },
  node: { 5: 'attribute' },
  attribute: { 5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph', 22: 'sparse', 23: 'sparse' },
  sparse: { 1: 'tensor', 2: 'tensor' },
  tensor: {},
};
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const EXTERNAL = 1;

function varint(bytes, i) {
  let value = 0n;
  for (let shift = 0n; shift <= 63n; shift += 7n) {
    if (i >= bytes.length) throw new Error('truncated varint');
    const byte = bytes[i++];
    value |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return [value, i];
  }
  throw new Error('truncated varint');
}

/** Whether the serialized ONNX model `bytes` (a Uint8Array) has a tensor whose data lives outside it; an Error
 * when the bytes are not a protobuf message. */
export function usesExternalData(bytes) {
  const todo = [['model', 0, bytes.length]];
  while (todo.length) {
    let [kind, i, end] = todo.pop();
    while (i < end) {
      let key;
      [key, i] = varint(bytes, i);
      const number = Number(key >> 3n);
      const wire = Number(key & 7n);
      if (wire === 0) {
        let value;
        [value, i] = varint(bytes, i);
        if (kind === 'tensor' && number === TENSOR_DATA_LOCATION && value === BigInt(EXTERNAL)) return true;
      } else if (wire === 2) {
        let size;
        [size, i] = varint(bytes, i);
        if (BigInt(i) + size > BigInt(end)) throw new Error('a field runs past its message');
        if (kind === 'tensor' && number === TENSOR_EXTERNAL_DATA) return true;
        if (number in FIELDS[kind]) todo.push([FIELDS[kind][number], i, i + Number(size)]);
        i += Number(size);
      } else if (wire === 1 || wire === 5) {
        i += wire === 1 ? 8 : 4;
      } else {
        throw new Error(`wire type ${wire} does not occur in ONNX models`);
      }
    }
    if (i !== end) throw new Error('a field runs past its message');
  }
  return false;
}
