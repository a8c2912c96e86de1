// A JSON Schema (draft 2020-12) validator for exactly the keywords runtime/manifest.schema.json uses: the twin of
// runtime/schema.py, so that both runtimes check manifests against that one file without a dependency.
// tests/runtime/test_runtime_manifest_schema.py proves both agree with the `jsonschema` package.

const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);
// The schema ships beside this folder: runtime/manifest.schema.json in vaekit, the site's root in vaekit-web.
const SCHEMA_URL = new URL('../manifest.schema.json', import.meta.url);

async function loadSchema() {
  if (isNode && SCHEMA_URL.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return JSON.parse(await readFile(SCHEMA_URL, 'utf8'));
  }
  const response = await fetch(SCHEMA_URL);
  if (!response.ok) throw new Error(`${SCHEMA_URL}: the manifest schema is missing (HTTP ${response.status})`);
  return response.json();
}

/** runtime/manifest.schema.json, the bundle format's one JSON Schema. */
export const MANIFEST_SCHEMA = await loadSchema();

const TYPES = {
  null: (v) => v === null,
  boolean: (v) => typeof v === 'boolean',
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === 'number',
  string: (v) => typeof v === 'string',
  array: (v) => Array.isArray(v),
  object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
};

/** The JSON type of a parsed value, in the schema's words. */
export function kindOf(value) {
  return Object.keys(TYPES).find((name) => TYPES[name](value));
}

const short = (value) => {
  const text = JSON.stringify(value);
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
};
const own = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

/** The first place where `value` breaks `schema`, in words ("files.x: ..."), or null when it fits. */
export function firstError(value, schema, root = schema, where = '') {
  if (schema === true) return null;
  const at = where || 'the manifest';
  if (schema === false) return `${at}: is not allowed here`;
  if ('$ref' in schema) {
    const error = firstError(value, resolve(root, schema.$ref), root, where);
    if (error) return error;
  }
  if ('type' in schema) {
    const types = [schema.type].flat();
    if (!types.some((t) => TYPES[t](value))) return `${at}: expected ${types.join(' or ')}, got ${kindOf(value)}`;
  }
  if ('enum' in schema && !schema.enum.some((option) => option === value)) {
    return `${at}: ${short(value)} is not one of ${schema.enum.map(short).join(', ')}`;
  }
  if (typeof value === 'number') {
    if ('minimum' in schema && value < schema.minimum) return `${at}: ${value} is below the minimum ${schema.minimum}`;
    if ('maximum' in schema && value > schema.maximum) return `${at}: ${value} is above the maximum ${schema.maximum}`;
    if ('exclusiveMinimum' in schema && value <= schema.exclusiveMinimum) return `${at}: ${value} must be above ${schema.exclusiveMinimum}`;
  }
  if (typeof value === 'string') {
    if ('maxLength' in schema && [...value].length > schema.maxLength) return `${at}: longer than ${schema.maxLength} characters`;
    if ('pattern' in schema && !new RegExp(schema.pattern, 'u').test(value)) return `${at}: ${short(value)} does not match ${schema.pattern}`;
  }
  if (Array.isArray(value)) return arrayError(value, schema, root, where, at);
  if (TYPES.object(value)) return objectError(value, schema, root, where, at);
  return null;
}

function arrayError(value, schema, root, where, at) {
  if (value.length < (schema.minItems ?? 0) || value.length > (schema.maxItems ?? Infinity)) {
    return `${at}: has ${value.length} items, expected ${schema.minItems ?? 0} to ${schema.maxItems ?? 'any'}`;
  }
  const prefix = schema.prefixItems ?? [];
  for (let i = 0; i < value.length; i++) {
    const error = firstError(value[i], i < prefix.length ? prefix[i] : (schema.items ?? true), root, `${where}[${i}]`);
    if (error) return error;
  }
  return null;
}

function objectError(value, schema, root, where, at) {
  const missing = (schema.required ?? []).filter((key) => !own(value, key));
  if (missing.length) return `${at}: required key '${missing[0]}' is missing`;
  const keys = Object.keys(value);
  if (keys.length > (schema.maxProperties ?? Infinity)) return `${at}: has ${keys.length} keys, at most ${schema.maxProperties} allowed`;
  const properties = schema.properties ?? {};
  for (const key of keys) {
    if ('propertyNames' in schema) {
      const error = firstError(key, schema.propertyNames, root, `${at}: key '${key}'`);
      if (error) return error;
    }
    const sub = own(properties, key) ? properties[key] : (schema.additionalProperties ?? true);
    const error = firstError(value[key], sub, root, where ? `${where}.${key}` : key);
    if (error) return error;
  }
  return null;
}

function resolve(root, ref) {
  return ref.replace(/^#\//, '').split('/').reduce((node, part) => node[part], root);
}
