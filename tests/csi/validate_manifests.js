// Validate Kubernetes manifests (JSON documents, one array on stdin, as
// [{file, doc}]) with kubernetes-models: each against its kind's JSON
// schema, then every field path checked to be one the schema knows. The
// schemas let unknown fields pass, so a misspelled one is caught by
// probing: the field's value is replaced by a Symbol, which no schema type
// accepts; a field the schema knows then fails at exactly its path, an
// unknown one does not fail at all.
"use strict";

function model(apiVersion, kind) {
  let mod;
  try {
    mod = require("kubernetes-models/" + apiVersion);
  } catch (e) {
    return null;
  }
  return mod[kind] || null;
}

function errorsOf(Model, doc) {
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    return e.errors || [{ instancePath: "", message: e.message }];
  }
}

// Every path to a value in doc: ["spec", "template", ...].
function paths(v, at, out) {
  if (v && typeof v === "object") {
    for (const k of Object.keys(v)) {
      out.push(at.concat([k]));
      paths(v[k], at.concat([k]), out);
    }
  }
  return out;
}

function probe(Model, doc, path) {
  const copy = JSON.parse(JSON.stringify(doc));
  let o = copy;
  for (const k of path.slice(0, -1)) o = o[k];
  o[path[path.length - 1]] = Symbol("probe");
  const want = "/" + path.map((k) => String(k).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
  return errorsOf(Model, copy).some((e) => e.instancePath === want);
}

function check(file, doc) {
  const bad = [];
  const what = `${file}: ${doc.kind} ${doc.metadata && doc.metadata.name}`;
  const Model = model(doc.apiVersion, doc.kind);
  if (!Model) return [`${what}: unknown apiVersion/kind ${doc.apiVersion}/${doc.kind}`];
  for (const e of errorsOf(Model, doc)) bad.push(`${what}: ${e.instancePath} ${e.message}`);
  for (const p of paths(doc, [], [])) {
    if (p[0] === "apiVersion" || p[0] === "kind") continue;
    if (!probe(Model, doc, p)) bad.push(`${what}: unknown field ${p.join(".")}`);
  }
  return bad;
}

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
let bad = [];
for (const { file, doc } of input) bad = bad.concat(check(file, doc));
for (const b of bad) console.error("  - " + b);
console.error(`${input.length} objects, ${bad.length} problems`);
process.exit(bad.length ? 1 : 0);
