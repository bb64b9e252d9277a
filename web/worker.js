// Runs osprey's WebAssembly module off the page's thread: model loading and
// generation are synchronous calls that would otherwise freeze the tab.
// Messages in: {type: 'load', file, threads, device: 'auto'|'webgpu'|'cpu', stopFlag},
// {type: 'chat', messages, options}.
// Messages out: progress, loaded, piece, done, error.
//
// A cross-origin isolated page gets the threaded module (osprey.js: Web
// Workers as threads, and WebGPU); any other page the single-threaded one
// (osprey-single.js: the CPU, one thread), which needs no shared memory.
const isolated = self.crossOriginIsolated === true;
importScripts(isolated ? 'osprey.js' : 'osprey-single.js');

let osprey = null;
let model = null;
// Stop requests arrive as messages, which this thread reads only between
// calls; a shared flag the page sets is read after every piece instead.
let stopFlag = null;

async function ready() {
  // The module's own threads load osprey.js again; inside a worker it cannot
  // tell its own address, so it is given it.
  if (!osprey) osprey = await createOsprey(isolated ? { mainScriptUrlOrBlob: new URL('osprey.js', self.location.href).href } : {});
  return osprey;
}

function fail(e) {
  postMessage({ type: 'error', message: String(e && e.message ? e.message : e) });
}

onmessage = async (event) => {
  const msg = event.data;
  try {
    if (msg.type === 'load') {
      const o = await ready();
      if (model) { model.free(); model = null; }
      stopFlag = msg.stopFlag ? new Int32Array(msg.stopFlag) : null;
      const t0 = performance.now();
      const load = (device) => o.loadModel(msg.file, {
        threads: Math.min(msg.threads || 0, o.maxThreads()),
        device,
        onProgress: (done, total) => postMessage({ type: 'progress', done, total }),
      });
      // 'auto': WebGPU when the browser has it and it runs this model; else
      // the CPU, saying why not.
      const want = msg.device || 'auto';
      // (Not isolated, the page says it runs the single-threaded module,
      // which cannot reach WebGPU: its thread cannot wait for the GPU's.)
      let fallback = '';
      if (want === 'webgpu' || (want === 'auto' && isolated && self.navigator && navigator.gpu)) {
        try {
          model = await load('webgpu');
        } catch (e) {
          if (want === 'webgpu') throw e;
          fallback = String(e && e.message ? e.message : e);
        }
      }
      if (!model) model = await load('cpu');
      const info = model.info();
      const onGpu = info.device.startsWith('webgpu');
      postMessage({ type: 'loaded', info, seconds: (performance.now() - t0) / 1000, fallback,
                    device: onGpu ? 'WebGPU, ' + info.device.replace(/^webgpu \(|\)$/g, '') : 'WebAssembly CPU (SIMD128)',
                    threads: onGpu ? 0 : Math.min(msg.threads || 0, o.maxThreads()) });
    } else if (msg.type === 'chat') {
      if (!model) throw new Error('no model is loaded');
      if (stopFlag) Atomics.store(stopFlag, 0, 0);
      const reply = model.chat(msg.messages, msg.options, (piece) => {
        postMessage({ type: 'piece', piece });
        return !(stopFlag && Atomics.load(stopFlag, 0));
      });
      postMessage({ type: 'done', reply });
    }
  } catch (e) {
    fail(e);
  }
};
