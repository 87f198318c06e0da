#!/usr/bin/env node
// Generates the Postman collection of the API from its OpenAPI document:
//
//   node .ci/postman.js docs/openapi.yaml docs/aura.postman_collection.json
//
// openapi-to-postmanv2 converts the document (folders by tag, requests named
// by summary, values from the document's examples, optional parameters
// unticked); this script then makes the result usable and reproducible:
//
// - the collection authenticates with Bearer {{apiKey}}; operations with
//   `security: []` (health, metrics, the document itself) send no auth;
// - collection variables: baseUrl (http://localhost:8080), apiKey (empty),
//   and one per path parameter (clinic_id, patient_id, ...; initially the
//   document's example), which every request's path uses as {{clinic_id}}
//   etc.;
// - every Idempotency-Key header is {{$guid}}, a fresh key per send;
// - every request gets a test that its response status is one the document
//   lists for the operation (so newman and Postman's runner flag any other);
// - the converter's random ids are dropped and _postman_id is a constant, so
//   generating again from the same document gives the same bytes
//   (`make postman-check` relies on that).
//
// It fails if the collection does not hold each operation of the document
// exactly once.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const yaml = require('js-yaml');
const Converter = require('openapi-to-postmanv2');

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const BASE_URL = 'http://localhost:8080';

function fail(message) {
  console.error(`postman: ${message}`);
  process.exit(1);
}

// A fixed UUID-shaped id derived from text (so re-imports replace the same
// collection in Postman rather than adding a copy).
function stableId(text) {
  const h = crypto.createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// The operations of the document, by "METHOD /path/{param}".
function operations(spec) {
  const ops = new Map();
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const security = op.security !== undefined ? op.security : spec.security;
      ops.set(`${method.toUpperCase()} ${path}`, { anonymous: Array.isArray(security) && security.length === 0 });
    }
  }
  return ops;
}

// The OpenAPI path of a Postman URL: ":clinic_id" segments become "{clinic_id}".
function templatePath(url) {
  return '/' + url.path.map((s) => (s.startsWith(':') ? `{${s.slice(1)}}` : s)).join('/');
}

// Walks every request item (not folders) of the collection.
function eachRequest(items, fn) {
  for (const item of items) {
    if (Array.isArray(item.item)) eachRequest(item.item, fn);
    else if (item.request) fn(item);
  }
}

// Drops the converter's random ids of folders, requests and examples.
function dropIds(items) {
  for (const item of items) {
    delete item.id;
    if (Array.isArray(item.item)) dropIds(item.item);
    for (const response of item.response || []) delete response.id;
  }
}

// Points the request's path parameters at collection variables, noting in
// pathParams each one's first example value (the variable's initial value),
// and gives every POST a fresh Idempotency-Key.
function useVariables(request, pathParams) {
  for (const header of request.header || []) {
    if (header.key.toLowerCase() === 'idempotency-key') header.value = '{{$guid}}';
  }
  for (const variable of (request.url && request.url.variable) || []) {
    if (!pathParams.has(variable.key)) pathParams.set(variable.key, variable.value == null ? '' : String(variable.value));
    variable.value = `{{${variable.key}}}`;
  }
}

// A test script asserting the response's status is one of the statuses of
// the item's examples, which the converter makes from the operation's
// documented responses.
function documentedStatusTest(item) {
  const codes = [...new Set((item.response || []).map((r) => r.code))].sort((a, b) => a - b);
  if (codes.length === 0 || !codes.every(Number.isInteger)) fail(`request "${item.name}": documented statuses ${JSON.stringify(codes)}`);
  return {
    listen: 'test',
    script: {
      type: 'text/javascript',
      exec: [
        `pm.test("the status is one docs/openapi.yaml documents: ${codes.join(', ')}", function () {`,
        `    pm.expect(pm.response.code).to.be.oneOf([${codes.join(', ')}]);`,
        '});',
      ],
    },
  };
}

function main() {
  const [src, out] = process.argv.slice(2);
  if (!src || !out) fail('usage: node .ci/postman.js OPENAPI.yaml OUT.json');
  const text = fs.readFileSync(src, 'utf8');
  const ops = operations(yaml.load(text));
  const options = {
    folderStrategy: 'Tags',
    requestNameSource: 'Fallback',
    parametersResolution: 'Example',
    enableOptionalParameters: false,
    includeAuthInfoInExample: false,
    alwaysInheritAuthentication: false,
    indentCharacter: 'Space',
  };
  Converter.convertV2({ type: 'string', data: text }, options, (err, res) => {
    if (err) fail(err.stack || String(err));
    if (!res || !res.result) fail(`conversion failed: ${res && res.reason}`);
    const collection = res.output[0].data;

    collection.info._postman_id = stableId(`github.com/aura-clinic/aura ${collection.info.name}`);
    collection.auth = { type: 'bearer', bearer: [{ key: 'token', value: '{{apiKey}}', type: 'string' }] };
    dropIds(collection.item);

    const seen = new Map();
    const pathParams = new Map();
    eachRequest(collection.item, (item) => {
      const { request } = item;
      const key = `${request.method} ${templatePath(request.url)}`;
      const op = ops.get(key);
      if (!op) fail(`request "${item.name}" (${key}) is not an operation of ${src}`);
      seen.set(key, (seen.get(key) || 0) + 1);
      // null inherits the collection's bearer auth.
      request.auth = op.anonymous ? { type: 'noauth' } : null;
      useVariables(request, pathParams);
      item.event = [documentedStatusTest(item)];
      for (const response of item.response || []) {
        if (response.originalRequest) useVariables(response.originalRequest, new Map());
      }
    });
    for (const key of ops.keys()) {
      if (seen.get(key) !== 1) fail(`operation ${key} appears ${seen.get(key) || 0} times in the collection`);
    }

    collection.variable = [
      { key: 'baseUrl', value: BASE_URL, type: 'string' },
      { key: 'apiKey', value: '', type: 'string' },
      ...[...pathParams.keys()].sort().map((key) => ({ key, value: pathParams.get(key), type: 'string' })),
    ];
    fs.writeFileSync(out, JSON.stringify(collection, null, 2) + '\n');
    console.log(`postman: wrote ${out}: ${ops.size} operations, ${collection.item.length} folders`);
  });
}

main();
