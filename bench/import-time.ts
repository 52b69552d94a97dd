/**
 * What loading costs: run as `node --import tsx bench/import-time.ts SPEC...` (a fresh process per
 * measurement), it imports each SPEC in turn and prints one JSON line: the time from the process' start to
 * this file's first line (node boot + tsx's hook + transforming this file), the imports' time, and the heap.
 * SPEC: a package name, or a path relative to bench/ (../playbooks/san.ts).
 */
const beforeMs = performance.now();
const specs = process.argv.slice(2);
const t0 = performance.now();
for (const spec of specs) await import(spec);
const importMs = performance.now() - t0;
const mem = process.memoryUsage();
process.stdout.write(
  `${JSON.stringify({ specs, beforeMs, importMs, rssMb: mem.rss / 2 ** 20, heapUsedMb: mem.heapUsed / 2 ** 20 })}\n`,
);
export {};
