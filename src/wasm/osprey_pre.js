// Runs before the emscripten runtime starts (--pre-js). Under Node the
// runtime would fetch() osprey.wasm by path, which Node's fetch refuses, so
// the bytes are read from beside this file instead.
if (typeof process === 'object' && process.versions && process.versions.node && !Module['wasmBinary'] &&
    typeof require === 'function' && typeof __dirname === 'string') {
  Module['wasmBinary'] = require('fs').readFileSync(require('path').join(__dirname, 'osprey.wasm'));
}
