// A small reader of NumPy .npy files (format versions 1-3): the float32 little-endian arrays that bundles carry
// as conformance vectors. Never pickles; anything else is an error naming the file.

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** `bytes` (a Uint8Array) as {data: Float32Array, dims}; throws an Error naming `name` when it is not a float32 .npy. */
export function parseNpy(bytes, name) {
  const fail = (why) => new Error(`${name}: not a float32 .npy array (${why})`);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw fail('bad magic');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major < 1 || major > 3) throw fail(`unknown version ${major}`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw fail('unreadable header');
  if (descr[1] !== '<f4') throw fail(`dtype ${descr[1]}, the format stores <f4`);
  if (fortran[1] !== 'False') throw fail('Fortran order');
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = start + headerLength;
  if (dims.some((d) => !Number.isInteger(d) || d < 0) || bytes.length - offset !== 4 * count) {
    throw fail(`shape (${dims}) does not match the ${bytes.length - offset} data bytes`);
  }
  const data = new Float32Array(count);
  const body = new DataView(bytes.buffer, bytes.byteOffset + offset, 4 * count);
  for (let i = 0; i < count; i++) data[i] = body.getFloat32(4 * i, true);
  return { data, dims };
}
