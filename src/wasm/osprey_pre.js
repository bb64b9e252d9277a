// Runs before the emscripten runtime starts (--pre-js). Under Node the
// runtime would fetch() osprey.wasm by path, which Node's fetch refuses, so
// the bytes are read from beside this file instead (osprey.wasm beside
// osprey.js, osprey-single.wasm beside osprey-single.js).
if (typeof process === 'object' && process.versions && process.versions.node && !Module['wasmBinary'] &&
    typeof require === 'function' && typeof __filename === 'string') {
  const path = require('path');
  Module['wasmBinary'] = require('fs').readFileSync(
      path.join(path.dirname(__filename), path.basename(__filename, '.js') + '.wasm'));
}
