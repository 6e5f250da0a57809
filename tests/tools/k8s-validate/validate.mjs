// validate.mjs FILE...: validates every YAML document of each file offline
// against the Kubernetes and KEDA schemas of the npm packages
// kubernetes-models and @kubernetes-models/keda, in two passes:
//  1. the package's own JSON-schema validator (types, enums, required);
//  2. unknown fields: those schemas accept any extra key, so a typo such as
//     `imagee:` or `minReplicaCountt:` would pass; every key is checked
//     against the model's TypeScript declaration (.d.ts) instead.
// Prints one line per document; exit 0 if all are valid, 1 otherwise, 2 on
// usage or a missing package.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseAllDocuments } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.join(here, "node_modules");

// apiVersion + kind -> the model's module path (without extension).
function modelPath(apiVersion, kind) {
    if (!/^[A-Za-z0-9]+$/.test(kind)) return null;
    if (apiVersion.startsWith("keda.sh/"))
        return path.join(modules, "@kubernetes-models/keda", apiVersion, kind);
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    const dir = group ? path.join(group, version) : version;
    return path.join(modules, "kubernetes-models", dir, kind);
}

// --- field sets from the .d.ts declarations --------------------------------

const declCache = new Map();

// Resolves an import specifier of a .d.ts file to a .d.ts path.
function resolveDts(fromFile, spec) {
    let p = spec.startsWith(".") ? path.resolve(path.dirname(fromFile), spec) : path.join(modules, spec);
    p = p.replace(/\.js$/, "");
    return fs.existsSync(p + ".d.ts") ? p + ".d.ts" : null;
}

// Splits the body of an object type into [name, type text] pairs at depth 0.
function properties(body) {
    const out = [];
    let i = 0;
    while (i < body.length) {
        const m = /^\s*(?:\/\*\*[\s\S]*?\*\/\s*)*"([^"]+)"\??:\s*/.exec(body.slice(i));
        if (!m) break;
        i += m[0].length;
        let depth = 0, j = i;
        for (; j < body.length; j++) {
            const c = body[j];
            if (c === "{" || c === "<" || c === "(") depth++;
            else if (c === "}" || c === ">" || c === ")") depth--;
            else if (c === ";" && depth === 0) break;
        }
        out.push([m[1], body.slice(i, j).trim()]);
        i = j + 1;
    }
    return out;
}

// A type descriptor: {fields: Map(name -> descriptor)} for an object with
// known keys, {items: descriptor} for an array, or null (any keys: maps,
// primitives, int-or-string, free-form JSON).
function typeOf(text, file, imports) {
    const arr = /^Array<([\s\S]*)>$/.exec(text);
    if (arr) return { items: typeOf(arr[1].trim(), file, imports) };
    if (text.startsWith("{")) {
        const inner = text.slice(1, -1);
        if (/^\s*\[key: string\]/.test(inner)) return null;
        return { lazy: () => fieldsOf(properties(inner), file, imports) };
    }
    if (imports.has(text)) {
        const target = imports.get(text);
        return target ? { lazy: () => declFields(target) } : null;
    }
    return null;
}

function fieldsOf(props, file, imports) {
    const m = new Map();
    for (const [name, t] of props) m.set(name, typeOf(t, file, imports));
    return m;
}

// The field map of the first exported interface of a .d.ts file, or null.
function declFields(file) {
    if (declCache.has(file)) return declCache.get(file);
    declCache.set(file, null);
    const src = fs.readFileSync(file, "utf8");
    const imports = new Map();
    for (const m of src.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g))
        for (const name of m[1].split(",").map((s) => s.trim()))
            imports.set(name, resolveDts(file, m[2]));
    const head = /export interface \w+(?: extends [\w, ]+)? \{/.exec(src);
    if (!head) {
        // An alias of another declaration: export type IA = IB;
        const alias = /export type \w+ = (\w+);/.exec(src);
        const target = alias && imports.get(alias[1]);
        const fields = target ? declFields(target) : null;
        declCache.set(file, fields);
        return fields;
    }
    let depth = 1, k = head.index + head[0].length;
    for (; k < src.length && depth > 0; k++) {
        if (src[k] === "{") depth++;
        else if (src[k] === "}") depth--;
    }
    const fields = fieldsOf(properties(src.slice(head.index + head[0].length, k - 1)), file, imports);
    declCache.set(file, fields);
    return fields;
}

function unknownFields(value, desc, where, out) {
    if (!desc || value === null || typeof value !== "object") return;
    if (desc.items) {
        if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, desc.items, `${where}[${i}]`, out));
        return;
    }
    const fields = desc.lazy ? desc.lazy() : desc.fields;
    if (!fields || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
        if (!fields.has(k)) out.push(`${where}/${k}: unknown field`);
        else unknownFields(v, fields.get(k), `${where}/${k}`, out);
    }
}

// --- main ------------------------------------------------------------------

async function validateDoc(doc) {
    const errs = [];
    if (!doc || typeof doc !== "object") return ["not a mapping"];
    const { apiVersion, kind } = doc;
    if (typeof apiVersion !== "string" || typeof kind !== "string") return ["apiVersion and kind are required"];
    const mp = modelPath(apiVersion, kind);
    if (!mp || !fs.existsSync(mp + ".js")) return [`no schema for ${apiVersion} ${kind}`];
    const mod = await import(pathToFileURL(mp + ".js").href);
    try {
        new mod[kind](doc).validate();
    } catch (e) {
        errs.push(String(e.message || e).replace(/\n/g, "; "));
    }
    unknownFields(doc, { lazy: () => declFields(mp + ".d.ts") }, "", errs);
    return errs;
}

async function main(files) {
    if (!files.length) {
        console.error("usage: validate.mjs FILE...");
        return 2;
    }
    if (!fs.existsSync(path.join(modules, "kubernetes-models")) || !fs.existsSync(path.join(modules, "@kubernetes-models/keda"))) {
        console.error(`validate.mjs: npm packages missing in ${modules}: run tests/tools/k8s-validate/install`);
        return 2;
    }
    let bad = 0, n = 0;
    for (const f of files) {
        const docs = parseAllDocuments(fs.readFileSync(f, "utf8"));
        for (const d of docs) {
            if (d.errors.length) {
                bad++;
                console.log(`FAIL ${f}: YAML: ${d.errors[0].message}`);
                continue;
            }
            const doc = d.toJS();
            if (doc === null) continue;
            n++;
            const errs = await validateDoc(doc);
            const name = `${f}: ${doc.kind || "?"}/${doc.metadata?.name || "?"}`;
            if (errs.length) {
                bad++;
                for (const e of errs) console.log(`FAIL ${name}: ${e}`);
            } else console.log(`ok   ${name}`);
        }
    }
    console.log(`${n} documents, ${bad} invalid`);
    return bad ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
