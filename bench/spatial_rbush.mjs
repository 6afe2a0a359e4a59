// Node driver for bench/spatial.py: runs rbush@4.0.1 + rbush-knn on the data set the Python
// script wrote (raw little-endian Float64 files) and prints one JSON object of timings.
// Usage: node bench/spatial_rbush.mjs <data dir> <repeats>
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import RBush from 'rbush';
import knn from 'rbush-knn';

const [dir, repeatsArg] = process.argv.slice(2);
const repeats = Number(repeatsArg);

function floats(name) {
    const buf = readFileSync(join(dir, `${name}.f64`));
    return new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8);
}

function boxes(name) {
    const a = floats(name);
    const out = [];
    for (let i = 0; i < a.length; i += 4) {
        out.push({ minX: a[i], minY: a[i + 1], maxX: a[i + 2], maxY: a[i + 3], id: i / 4 });
    }
    return out;
}

const data = boxes('data');
const inserts = boxes('inserts');
const queries = { 'search_0.01pct': boxes('q001'), search_1pct: boxes('q1'), search_10pct: boxes('q10') };
const pts = floats('points');

function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
}

function timed(setup, body) {
    const times = [];
    let out;
    for (let r = 0; r < repeats; r++) {
        const state = setup();
        const t0 = process.hrtime.bigint();
        out = body(state);
        times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return [median(times), out];
}

const result = { hits: {} };
let tree;
[result.bulk_load, tree] = timed(() => null, () => new RBush(16).load(data));
for (const [name, qs] of Object.entries(queries)) {
    let hits;
    [result[name], hits] = timed(() => null, () => {
        let n = 0;
        for (const q of qs) n += tree.search(q).length;
        return n;
    });
    result.hits[name] = hits;
}
for (const k of [1, 10]) {
    let total;
    [result[`knn_k${k}`], total] = timed(() => null, () => {
        let n = 0;
        for (let i = 0; i < pts.length; i += 2) n += knn(tree, pts[i], pts[i + 1], k).length;
        return n;
    });
    result.hits[`knn_k${k}`] = total;
}
[result.insert_100k] = timed(() => new RBush(16), (t) => {
    for (const b of inserts) t.insert(b);
});
[result.remove_10k] = timed(() => new RBush(16).load(data), (t) => {
    for (let i = 0; i < 10000 && i < data.length; i++) t.remove(data[i]);
});
result.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify(result));
