// osprey's JavaScript API, appended to the emscripten module (--post-js).
//
//   const osprey = await createOsprey();
//   const model = await osprey.loadModel(fileOrArrayBufferOrPath, { threads: 2, onProgress });
//   const reply = model.chat([{ role: 'user', content: 'Hi' }], { maxTokens: 64 }, (piece) => { ... });
//   model.free();
//
// A model's bytes are copied into the module's memory in chunks (a File is
// never read whole into a second buffer) and used there in place. Calls are
// synchronous: in a page, run the module in a Web Worker (web/worker.js does).

// wasm32 addresses 4 GiB; the weights, the KV cache and the work buffers
// all live in it, so a file must leave room for the rest.
Module.maxModelBytes = 4 * 1024 * 1024 * 1024 - 512 * 1024 * 1024;
const kChunkBytes = 16 * 1024 * 1024;
let modelCounter = 0;

function gib(bytes) {
  return (bytes / (1024 * 1024 * 1024)).toFixed(2) + ' GiB';
}

function describeSource(source) {
  if (typeof source === 'string') return source;
  if (typeof Blob !== 'undefined' && source instanceof Blob) return source.name || 'the file';
  return 'the buffer';
}

// Reads `size` bytes of `source` into memory at `address`, chunk by chunk.
async function copyIn(source, address, size, onProgress) {
  let done = 0;
  const report = () => { if (onProgress) onProgress(done, size); };
  if (typeof source === 'string') {
    const fs = require('fs');
    const fd = fs.openSync(source, 'r');
    try {
      while (done < size) {
        const n = fs.readSync(fd, HEAPU8, address + done, Math.min(kChunkBytes, size - done), done);
        if (n <= 0) throw new Error(source + ': the file ended at byte ' + done + ' of ' + size);
        done += n;
        report();
      }
    } finally {
      fs.closeSync(fd);
    }
    return;
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    while (done < size) {
      const end = Math.min(size, done + kChunkBytes);
      const chunk = new Uint8Array(await source.slice(done, end).arrayBuffer());
      HEAPU8.set(chunk, address + done);
      done = end;
      report();
    }
    return;
  }
  const bytes = source instanceof ArrayBuffer ? new Uint8Array(source)
    : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  while (done < size) {
    const end = Math.min(size, done + kChunkBytes);
    HEAPU8.set(bytes.subarray(done, end), address + done);
    done = end;
    report();
  }
}

function sourceSize(source) {
  if (typeof source === 'string') return require('fs').statSync(source).size;
  if (typeof Blob !== 'undefined' && source instanceof Blob) return source.size;
  if (source instanceof ArrayBuffer) return source.byteLength;
  if (ArrayBuffer.isView(source)) return source.byteLength;
  throw new TypeError('loadModel takes a File, Blob, ArrayBuffer, typed array or (in Node) a path');
}

function unwrap(result) {
  if (result && typeof result === 'object' && typeof result.error === 'string') throw new Error(result.error);
  return result;
}

class Model {
  constructor(engine) { this.engine = engine; }
  info() { return unwrap(this.engine.info()); }
  tokenize(text, { addBos = true } = {}) { return unwrap(this.engine.tokenize(String(text), !!addBos)); }
  detokenize(ids) { return unwrap(this.engine.detokenize(Array.from(ids))).text; }
  // The conversation as the model's chat template writes it.
  applyChatTemplate(messages, { addGenerationPrompt = true } = {}) {
    return unwrap(this.engine.renderChat(JSON.stringify(messages), !!addGenerationPrompt)).text;
  }
  // Appends `prompt` to what the model holds and generates after it;
  // onText(piece) gets each piece and may return false to stop.
  generate(prompt, options = {}, onText = undefined) {
    return unwrap(this.engine.generate(String(prompt), JSON.stringify(options), onText));
  }
  // The assistant's reply to `messages`, reusing what is held of the rendered prompt.
  chat(messages, options = {}, onText = undefined) {
    return unwrap(this.engine.chat(JSON.stringify(messages), JSON.stringify(options), onText));
  }
  // Appends the token ids to what the model holds and returns the next
  // token's logits, a Float32Array of the vocabulary's size.
  logits(ids) { return unwrap(this.engine.logits(Array.from(ids))); }
  reset() { this.engine.reset(); }
  // Where the GPU's time goes (on WebGPU, where the adapter has timestamp
  // queries): timeKernels(true) starts timing each kernel afresh and returns
  // false when it cannot; kernelTimes() is [{kernel, calls, seconds}] since.
  timeKernels(on) { return this.engine.timeKernels(!!on); }
  kernelTimes() { return unwrap(this.engine.kernelTimes()); }
  free() {
    if (!this.engine) return;
    this.engine.unload();
    this.engine.delete();
    this.engine = null;
  }
}

// Loads a GGUF model. options: threads (0: the module's pool), context,
// cacheTypeK/cacheTypeV, device ('cpu', or 'webgpu' in a browser's Web
// Worker: weights and KV cache on the GPU), onProgress(bytesRead, bytesTotal).
Module.loadModel = async function (source, options = {}) {
  const size = sourceSize(source);
  const what = describeSource(source);
  if (size > Module.maxModelBytes) {
    throw new Error(what + ' is ' + gib(size) + '; the WebAssembly build holds models of at most ' +
                    gib(Module.maxModelBytes) + ' (wasm32 addresses 4 GiB, and the cache and work buffers need room)');
  }
  const address = Module._malloc(Math.max(1, size)) >>> 0;
  if (address === 0) {
    throw new Error(what + ' (' + gib(size) + ') does not fit in the memory this tab or process can give WebAssembly');
  }
  const name = '/memory/' + (++modelCounter) + '/' + (typeof source === 'string' ? source.split('/').pop() : what);
  try {
    await copyIn(source, address, size, options.onProgress);
  } catch (e) {
    Module._free(address);
    throw e;
  }
  if (options.device === 'webgpu') {
    try {
      await Module.openWebGpu();
    } catch (e) {
      Module._free(address);
      throw e;
    }
  }
  Module.adoptBytes(name, address, size);  // owned by the module from here on
  const engine = new Module.Engine();
  const { onProgress, ...loadOptions } = options;
  const error = engine.load(name, JSON.stringify(loadOptions));
  Module.forgetBytes(name);  // the model keeps its own reference
  if (error !== '') {
    engine.delete();
    throw new Error(error);
  }
  return new Model(engine);
};
