#!/usr/bin/env node
// Validates docs/asyncapi.yaml:
//
//   node .ci/asyncapi-check.js docs/asyncapi.yaml
//
// 1. @asyncapi/parser (the parser behind the AsyncAPI CLI's `validate`, with
//    the same Spectral ruleset) parses the document, resolving its $refs to
//    the files under docs/events/ and theirs between each other. Any
//    diagnostic of severity error or warning fails the check.
// 2. The payload schemas are JSON Schema draft 2020-12. The parser has no
//    schema parser for that format (it knows the AsyncAPI schema and
//    draft-07), and for AsyncAPI 3 documents it does not validate payload
//    schemas at all (`asyncapi validate` accepts a broken one), so this
//    script registers one for `application/schema+json;version=draft-2020-12`:
//    Ajv's 2020-12 validator compiles each message's payload schema, as the
//    parser resolved it, in strict mode with formats.
// 3. The files under docs/events/ are compiled as a set too, each added by
//    its $id, so that their relative $refs resolve against their $ids the way
//    any draft 2020-12 validator (the Go tests, consumers) resolves them.
// 4. Coverage and examples: the channel aura_events carries exactly one
//    message per event of the envelope schema's `event` enum, named by its
//    event; each event has exactly one receive operation; every message's
//    examples are valid against its payload and headers schemas.
'use strict';

const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;
const { Parser, fromFile } = require('@asyncapi/parser');

const DRAFT_2020_12 = [
  'application/schema+json;version=draft-2020-12',
  'application/schema+yaml;version=draft-2020-12',
];

// DiagnosticSeverity of @stoplight/types.
const SEVERITY = ['error', 'warning', 'information', 'hint'];

function newAjv() {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  return ajv;
}

// The draft 2020-12 schemas, compiled when the parser hands them to the
// schema parser below (with every $ref resolved and inlined, before it
// annotates schemas with x-parser-* members), by the key of their message
// (the path ends in <message>/payload/schema). The inlined files keep their
// $id and $schema, and an $id repeats (a payload schema is inlined in the
// message and in the envelope's if/then), which Ajv refuses: nothing is left
// to resolve, so those are dropped below the root. A schema Ajv refuses makes
// the parse fail with Ajv's message.
const compiled = new Map();

function inlined(schema, root = true) {
  if (Array.isArray(schema)) return schema.map((s) => inlined(s, false));
  if (schema === null || typeof schema !== 'object') return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (!root && (k === '$id' || k === '$schema')) continue;
    out[k] = inlined(v, false);
  }
  return out;
}

function compile(input) {
  const validate = newAjv().compile(inlined(input.data));
  const p = input.path || [];
  if (p[p.length - 2] === 'payload') compiled.set(p[p.length - 3], validate);
  return validate;
}

// The parser calls parse() for every schema with a schemaFormat (AsyncAPI 3
// documents), validate() only for AsyncAPI 2 documents.
const draft202012Parser = {
  getMimeTypes: () => DRAFT_2020_12,
  async validate(input) {
    try {
      compile(input);
      return [];
    } catch (err) {
      return [{ message: `not a valid JSON Schema draft 2020-12 schema: ${err.message}`, path: input.path }];
    }
  },
  async parse(input) {
    try {
      compile(input);
    } catch (err) {
      throw new Error(`${(input.path || []).join('/')}: not a valid JSON Schema draft 2020-12 schema: ${err.message}`);
    }
    return input.data;
  },
};

function loc(d) {
  const r = d.range && d.range.start;
  return `${(d.path || []).join('/')}${r ? ` (line ${r.line + 1})` : ''}`;
}

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node .ci/asyncapi-check.js ASYNCAPI.yaml');
    process.exit(2);
  }
  const problems = [];
  const parser = new Parser({ schemaParsers: [draft202012Parser] });
  const { document, diagnostics } = await fromFile(parser, file).parse({
    validateOptions: { allowedSeverity: { warning: true, info: true, hint: true } },
  });
  for (const d of diagnostics) {
    const severity = SEVERITY[d.severity] || String(d.severity);
    const line = `${severity}: ${d.code}: ${String(d.message).split(', stack: ')[0]} at ${loc(d)}`;
    if (d.severity <= 1) problems.push(line);
    else console.log(`asyncapi: ${line}`);
  }
  if (!document) {
    report(file, problems.length ? problems : ['the document could not be parsed']);
    return;
  }

  // The schema files as a draft 2020-12 validator sees them: every file
  // added by its $id, and the envelope compiled, resolving its relative
  // $refs against its $id (as the Go tests and any consumer do).
  const dir = path.join(path.dirname(file), 'events');
  const files = new Ajv2020({ strict: true, allErrors: true });
  addFormats(files);
  let envelope;
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.schema.json')).sort()) {
    const schema = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));
    if (name === 'envelope.schema.json') envelope = schema;
    try {
      files.addSchema(schema);
    } catch (err) {
      problems.push(`${path.join(dir, name)}: ${err.message}`);
    }
  }
  if (!envelope) report(file, [...problems, `no ${path.join(dir, 'envelope.schema.json')}`]);
  try {
    files.getSchema(envelope.$id);
  } catch (err) {
    problems.push(`${path.join(dir, 'envelope.schema.json')} does not compile with its $refs: ${err.message}`);
  }
  const events = envelope.properties.event.enum;
  const channel = document.channels().get('aura_events');
  if (!channel) {
    problems.push('no channel aura_events');
  } else {
    if (channel.address() !== 'aura_events') problems.push(`channel aura_events has address ${channel.address()}`);
    const names = channel.messages().all().map((m) => m.name());
    for (const event of events) {
      if (names.filter((n) => n === event).length !== 1) problems.push(`channel aura_events: event ${event} has ${names.filter((n) => n === event).length} messages`);
    }
    for (const n of names) if (!events.includes(n)) problems.push(`channel aura_events: message ${n} is not an event of envelope.schema.json`);
  }
  for (const event of events) {
    const ops = document.operations().all().filter((op) => op.isReceive() && op.messages().all().some((m) => m.name() === event));
    if (ops.length !== 1) problems.push(`event ${event} has ${ops.length} receive operations`);
  }

  let examples = 0;
  for (const message of document.messages().all()) {
    const payload = message.payload();
    const headers = message.headers();
    if (!payload || !DRAFT_2020_12.includes(payload.schemaFormat())) {
      problems.push(`message ${message.name()}: payload is not a draft 2020-12 schema`);
      continue;
    }
    const validatePayload = compiled.get(message.id());
    if (!validatePayload) {
      problems.push(`message ${message.id()}: its payload schema was not compiled`);
      continue;
    }
    const validateHeaders = headers ? newAjv().compile(stripAsyncAPI(headers.json())) : null;
    const ex = message.examples().all();
    if (ex.length === 0) problems.push(`message ${message.name()}: no example`);
    for (const example of ex) {
      examples++;
      const where = `message ${message.name()}, example ${example.name() || '?'}`;
      if (!validatePayload(example.payload())) problems.push(`${where}: payload: ${errors(validatePayload)}`);
      if (example.payload() && example.payload().event !== message.name()) problems.push(`${where}: payload's event is ${example.payload().event}`);
      if (validateHeaders && !validateHeaders(example.headers())) problems.push(`${where}: headers: ${errors(validateHeaders)}`);
    }
  }
  if (problems.length === 0) {
    console.log(`asyncapi: ${file} is valid AsyncAPI ${document.version()}: ${document.servers().length} servers, ` +
      `${document.channels().length} channel, ${document.messages().length} messages, ${document.operations().length} operations, ` +
      `${compiled.size} draft 2020-12 payload schemas compiled, ${examples} examples valid`);
  }
  report(file, problems);
}

// The AsyncAPI schema of the headers, for Ajv 2020-12: the parser's own
// x-parser-* annotations are dropped (they are not keywords).
function stripAsyncAPI(schema) {
  if (Array.isArray(schema)) return schema.map(stripAsyncAPI);
  if (schema === null || typeof schema !== 'object') return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) if (!k.startsWith('x-parser-')) out[k] = stripAsyncAPI(v);
  return out;
}

function errors(validate) {
  return (validate.errors || []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
}

function report(file, problems) {
  if (problems.length) {
    for (const p of problems) console.error(`asyncapi: ${p}`);
    console.error(`asyncapi: ${file} is not valid (${problems.length} problems)`);
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(`asyncapi: ${err.stack || err}`);
  process.exit(1);
});
