// Serves the in-browser page (web/) and osprey's WebAssembly modules: the
// threaded one (osprey.js) and the single-threaded one (osprey-single.js).
// By default with the two headers that make the page cross-origin isolated,
// which the threaded module needs (shared memory for its threads, and for
// WebGPU); --no-isolation leaves them out, as a plain static host would, and
// the page then runs the single-threaded module. Nothing but these files is
// served.
// Usage: node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--module-dir build-wasm/src/wasm]
//        [--single-module-dir build-wasm-single/src/wasm] [--no-isolation]
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  if (i + 1 >= args.length) {
    console.error(`serve: ${name} needs a value`);
    process.exit(2);
  }
  return args[i + 1];
}
const usage = "usage: node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--module-dir build-wasm/src/wasm]\n" +
              "       [--single-module-dir build-wasm-single/src/wasm] [--no-isolation]";
if (args.includes("--help") || args.includes("-h")) {
  console.log(usage);
  process.exit(0);
}
const valued = new Set(["--port", "--host", "--module-dir", "--single-module-dir"]);
args.forEach((a, i) => {
  if (a.startsWith("-") && !valued.has(a) && a !== "--no-isolation" && !(i > 0 && valued.has(args[i - 1]))) {
    console.error(`serve: unknown option ${a}\n${usage}`);
    process.exit(2);
  }
});
const isolation = !args.includes("--no-isolation");
const port = Number(option("--port", "8080"));
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve: --port ${option("--port")} is not a port number (0-65535)`);
  process.exit(2);
}
const host = option("--host", "127.0.0.1");
const moduleDir = path.resolve(option("--module-dir", path.join(here, "..", "build-wasm", "src", "wasm")));
const singleDir = path.resolve(option("--single-module-dir", path.join(here, "..", "build-wasm-single", "src", "wasm")));
// The page needs the module its headers select; the other is welcome.
const [needDir, needJs, build] = isolation ? [moduleDir, "osprey.js", "bash scripts/build_wasm.sh"]
                                           : [singleDir, "osprey-single.js", "bash scripts/build_wasm.sh --single-thread"];
if (!fs.existsSync(path.join(needDir, needJs))) {
  console.error(`serve: ${needDir} has no ${needJs}; build it with ${build}`);
  process.exit(1);
}

const files = {
  "/": [here, "index.html"], "/index.html": [here, "index.html"], "/page.js": [here, "page.js"],
  "/page.css": [here, "page.css"], "/worker.js": [here, "worker.js"],
  "/osprey.js": [moduleDir, "osprey.js"], "/osprey.wasm": [moduleDir, "osprey.wasm"],
  "/osprey.worker.js": [moduleDir, "osprey.worker.js"],
  "/osprey-single.js": [singleDir, "osprey-single.js"], "/osprey-single.wasm": [singleDir, "osprey-single.wasm"],
};
const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".wasm": "application/wasm" };

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const file = files[url.pathname];
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD" }).end();
    return;
  }
  if (!file) {
    res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
    return;
  }
  const full = path.join(...file);
  if (!fs.existsSync(full)) {  // the flavour that was not built
    res.writeHead(404, { "Content-Type": "text/plain" }).end(`${path.basename(full)} was not built\n`);
    return;
  }
  const isolating = isolation ? { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" } : {};
  res.writeHead(200, {
    "Content-Type": types[path.extname(full)] ?? "application/octet-stream",
    ...isolating,
    "Cache-Control": "no-cache",
  });
  if (req.method === "HEAD") res.end();
  else fs.createReadStream(full).pipe(res);
});
server.on("error", (e) => {
  console.error(`serve: cannot listen on ${host}:${port}: ${e.message}`);
  process.exit(1);
});
server.listen(port, host, () => {
  console.log(`serve: osprey's in-browser page at http://${host}:${server.address().port}/ ` +
              (isolation ? `(cross-origin isolated; module from ${moduleDir})`
                         : `(not isolated: the single-threaded module, from ${singleDir})`));
});
