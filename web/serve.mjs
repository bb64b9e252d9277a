// Serves the in-browser page (web/) and osprey's WebAssembly module with the
// two headers that let a page use WebAssembly threads (cross-origin
// isolation). Nothing but these files is served.
// Usage: node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--module-dir build-wasm/src/wasm]
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
if (args.includes("--help") || args.includes("-h")) {
  console.log("usage: node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--module-dir build-wasm/src/wasm]");
  process.exit(0);
}
const port = Number(option("--port", "8080"));
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`serve: --port ${option("--port")} is not a port number (0-65535)`);
  process.exit(2);
}
const host = option("--host", "127.0.0.1");
const moduleDir = path.resolve(option("--module-dir", path.join(here, "..", "build-wasm", "src", "wasm")));
if (!fs.existsSync(path.join(moduleDir, "osprey.js"))) {
  console.error(`serve: ${moduleDir} has no osprey.js; build it with bash scripts/build_wasm.sh`);
  process.exit(1);
}

const files = {
  "/": [here, "index.html"], "/index.html": [here, "index.html"], "/page.js": [here, "page.js"],
  "/page.css": [here, "page.css"], "/worker.js": [here, "worker.js"],
  "/osprey.js": [moduleDir, "osprey.js"], "/osprey.wasm": [moduleDir, "osprey.wasm"],
  "/osprey.worker.js": [moduleDir, "osprey.worker.js"],
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
  res.writeHead(200, {
    "Content-Type": types[path.extname(full)] ?? "application/octet-stream",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
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
  console.log(`serve: osprey's in-browser page at http://${host}:${server.address().port}/ (module from ${moduleDir})`);
});
