// The JavaScript half of the WebGPU back end (src/backends/webgpu/), appended
// to the emscripten module (--post-js).
//
// WebGPU answers through promises, while the forward pass in WebAssembly
// waits for each answer. So the GPUDevice lives in a Worker of its own (the
// device worker, below), and the module's thread posts it a request and
// blocks on a shared word until it answers. The device worker reads and
// writes the module's memory (a shared WebAssembly.Memory) directly: weights,
// dispatch lists and read-backs never cross as messages.
//
// The module's thread must be allowed to block, so WebGPU runs when the
// module runs in a Web Worker (web/worker.js), not on a page's main thread.

// The device worker's code; it runs from a Blob URL, so it is plain text.
function ospreyDeviceWorker() {
  let device = null;
  let memory = null;
  let state = null;  // Int32Array: [0] 0 waiting, 1 done, 2 failed; [1] reply bytes
  let replyBytes = null;
  let lost = '';
  const buffers = new Map();
  const pipelines = [];
  let staging = null;
  let uniforms = null;
  let bindGroups = new Map();
  const kUniformStride = 256;  // WebGPU's minUniformBufferOffsetAlignment
  let timing = false;          // each dispatch in a pass of its own, timed (bench)
  const kQueriesPerSet = 4096;  // WebGPU's largest query set: 2048 dispatches
  let querySets = [];
  let resolved = null, timesRead = null;

  function answer(ok, text) {
    const bytes = new TextEncoder().encode(text || '');
    const n = Math.min(bytes.length, replyBytes.length - 8);
    replyBytes.set(bytes.subarray(0, n), 8);
    state[1] = n;
    Atomics.store(state, 0, ok ? 1 : 2);
    Atomics.notify(state, 0);
  }
  const heap = () => memory.buffer;  // grows: always the current one
  function buffer(id) {
    const b = buffers.get(id);
    if (!b) throw new Error('no buffer ' + id);
    return b;
  }
  // Runs fn and turns validation and out-of-memory errors into exceptions.
  async function checked(fn) {
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let result;
    try {
      result = await fn();
    } finally {
      const invalid = await device.popErrorScope();
      const oom = await device.popErrorScope();
      if (invalid) throw new Error(invalid.message);
      if (oom) throw new Error('out of GPU memory: ' + oom.message);
    }
    return result;
  }

  async function open() {
    if (typeof navigator === 'undefined' || !navigator.gpu) {
      throw new Error('this browser has no WebGPU (navigator.gpu is missing in its workers)');
    }
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new Error('the browser offers WebGPU but found no adapter (see chrome://gpu)');
    const L = adapter.limits;
    // Timestamp queries, where the adapter has them, let bench time each kernel.
    const features = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
    device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
        maxBufferSize: L.maxBufferSize,
        maxStorageBuffersPerShaderStage: L.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
      },
    });
    device.lost.then((info) => { lost = 'the WebGPU device was lost (' + (info.message || info.reason) + ')'; });
    const info = adapter.info || {};
    const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
    return { adapter: name || 'unnamed adapter', maxBuffer: device.limits.maxStorageBufferBindingSize };
  }

  const ops = {
    // 1: alloc(id, bytes)
    1: async (id, bytes) => {
      const limit = device.limits.maxStorageBufferBindingSize;
      if (bytes > limit) {
        throw new Error('larger than the largest buffer this adapter binds (' + Math.floor(limit / 1048576) + ' MiB)');
      }
      const size = Math.ceil(bytes / 4) * 4;
      buffers.set(id, await checked(() => device.createBuffer({
        size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST })));
    },
    // 2: write(id, offset, address, bytes), in chunks (writeBuffer takes no shared memory)
    2: async (id, offset, address, bytes) => {
      const b = buffer(id);
      for (let done = 0; done < bytes;) {
        const n = Math.min(bytes - done, 16 << 20);
        device.queue.writeBuffer(b, offset + done, new Uint8Array(heap(), address + done, n).slice());
        done += n;
      }
    },
    // 3: read(id, offset, address, bytes)
    3: async (id, offset, address, bytes) => {
      if (!staging || staging.size < bytes) {
        if (staging) staging.destroy();
        staging = device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      }
      await checked(async () => {
        const enc = device.createCommandEncoder();
        enc.copyBufferToBuffer(buffer(id), offset, staging, 0, bytes);
        device.queue.submit([enc.finish()]);
        await staging.mapAsync(GPUMapMode.READ, 0, bytes);
      });
      new Uint8Array(heap(), address, bytes).set(new Uint8Array(staging.getMappedRange(0, bytes)));
      staging.unmap();
    },
    // 4: prepare(kernel index, WGSL address, WGSL bytes, parameter bytes)
    4: async (index, address, length, paramBytes) => {
      const code = new TextDecoder().decode(new Uint8Array(heap(), address, length).slice());
      const module = device.createShaderModule({ code });
      const info = await module.getCompilationInfo();
      const errors = info.messages.filter((m) => m.type === 'error');
      if (errors.length) throw new Error(errors.map((m) => m.lineNum + ':' + m.linePos + ' ' + m.message).join('; '));
      const pipeline = await checked(() => device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } }));
      pipelines[index] = { pipeline, paramBytes };
    },
    // 5: submit(address, words, times address): a pass, recorded as
    // webgpu_device.cpp writes it; timed, each dispatch's seconds go to the
    // doubles at `times address`.
    5: async (address, words, timesAddress) => {
      if (timesAddress && !timing) throw new Error('timing is off');
      const list = new Int32Array(heap(), address, words).slice();
      const dispatches = [];
      for (let i = 0; i < list.length;) {
        const kernel = list[i++];
        const nBuffers = list[i++];
        const ids = list.subarray(i, i + nBuffers);
        i += nBuffers;
        const nParams = list[i++];
        const params = list.subarray(i, i + nParams);
        i += nParams;
        dispatches.push({ kernel, ids, params, groups: [list[i], list[i + 1], list[i + 2]] });
        i += 3;
      }
      // Every dispatch's parameters, in one uniform buffer written once.
      const need = Math.max(1, dispatches.length) * kUniformStride;
      if (!uniforms || uniforms.size < need) {
        if (uniforms) uniforms.destroy();
        uniforms = device.createBuffer({ size: need, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
        bindGroups = new Map();
      }
      const packed = new Int32Array(need / 4);
      dispatches.forEach((d, n) => packed.set(d.params, n * kUniformStride / 4));
      device.queue.writeBuffer(uniforms, 0, packed);
      if (timesAddress) growTimestamps(dispatches.length);
      await checked(async () => {
        const enc = device.createCommandEncoder();
        // Timed, every dispatch is a pass of its own: timestamps are written
        // where a pass begins and ends.
        const timestampWrites = (n) => ({ querySet: querySets[Math.floor(2 * n / kQueriesPerSet)],
                                          beginningOfPassWriteIndex: (2 * n) % kQueriesPerSet,
                                          endOfPassWriteIndex: (2 * n) % kQueriesPerSet + 1 });
        let pass = timesAddress ? null : enc.beginComputePass();
        dispatches.forEach((d, n) => {
          const p = pipelines[d.kernel];
          if (!p) throw new Error('kernel ' + d.kernel + ' was not prepared');
          // Passes of one shape bind the same buffers in the same slots.
          const key = d.kernel + ':' + n + ':' + d.ids.join(',');
          let group = bindGroups.get(key);
          if (!group) {
            const entries = Array.from(d.ids, (id, binding) => ({ binding, resource: { buffer: buffer(id) } }));
            if (p.paramBytes > 0) {
              entries.push({ binding: d.ids.length,
                             resource: { buffer: uniforms, offset: n * kUniformStride, size: Math.ceil(p.paramBytes / 16) * 16 } });
            }
            group = device.createBindGroup({ layout: p.pipeline.getBindGroupLayout(0), entries });
            bindGroups.set(key, group);
          }
          if (timesAddress) pass = enc.beginComputePass({ timestampWrites: timestampWrites(n) });
          pass.setPipeline(p.pipeline);
          pass.setBindGroup(0, group);
          pass.dispatchWorkgroups(d.groups[0], d.groups[1], d.groups[2]);
          if (timesAddress) pass.end();
        });
        if (!timesAddress) pass.end();
        const queries = 2 * dispatches.length;
        if (timesAddress) {
          for (let q = 0, set = 0; q < queries; q += kQueriesPerSet, ++set) {
            enc.resolveQuerySet(querySets[set], 0, Math.min(kQueriesPerSet, queries - q), resolved, q * 8);
          }
          enc.copyBufferToBuffer(resolved, 0, timesRead, 0, queries * 8);
        }
        device.queue.submit([enc.finish()]);
        await device.queue.onSubmittedWorkDone();
        if (timesAddress) {
          await timesRead.mapAsync(GPUMapMode.READ, 0, queries * 8);
          const ns = new BigUint64Array(timesRead.getMappedRange(0, queries * 8));
          const seconds = new Float64Array(heap(), timesAddress, dispatches.length);
          // A device may write end before begin across a clock reset: no time rather than a negative one.
          for (let n = 0; n < dispatches.length; ++n) seconds[n] = Math.max(0, Number(ns[2 * n + 1] - ns[2 * n])) / 1e9;
          timesRead.unmap();
        }
      });
    },
    // 6: release every buffer (the model is gone; the device stays open)
    6: async () => {
      for (const b of buffers.values()) b.destroy();
      buffers.clear();
      bindGroups = new Map();
      timing = false;
    },
    // 7: time(on): time each dispatch of the passes that follow
    7: async (on) => {
      if (on && !device.features.has('timestamp-query')) throw new Error('this adapter has no timestamp queries');
      timing = !!on;
    },
  };

  // Query sets and buffers for the timestamps of `n` dispatches.
  function growTimestamps(n) {
    while (querySets.length * kQueriesPerSet < 2 * n) {
      querySets.push(device.createQuerySet({ type: 'timestamp', count: kQueriesPerSet }));
    }
    const bytes = querySets.length * kQueriesPerSet * 8;
    if (!resolved || resolved.size < bytes) {
      if (resolved) resolved.destroy();
      if (timesRead) timesRead.destroy();
      resolved = device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      timesRead = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
  }

  onmessage = async (event) => {
    const m = event.data;
    if (m.op === 'open') {
      memory = m.memory;
      state = new Int32Array(m.control);
      replyBytes = new Uint8Array(m.control);
      try {
        postMessage(await open());
      } catch (e) {
        postMessage({ error: String(e && e.message ? e.message : e) });
      }
      return;
    }
    try {
      if (lost) throw new Error(lost);
      const op = ops[m.op];
      if (!op) throw new Error('unknown request ' + m.op);
      await op(...m.args);
      answer(true, '');
    } catch (e) {
      answer(false, lost || String(e && e.message ? e.message : e));
    }
  };
}

// How long the module's thread waits for one answer before giving up (a
// software adapter runs a pass of a large model slowly; a hung one never).
const kDeviceAnswerMs = 600000;

// Opens the WebGPU device (once per module) and returns the adapter's name.
Module.openWebGpu = async function () {
  const proxy = Module.webgpuProxy;
  if (proxy && proxy.adapter) return proxy.adapter;
  if (typeof WorkerGlobalScope === 'undefined' || typeof Worker === 'undefined') {
    throw new Error('WebGPU runs when the module runs in a Web Worker (web/worker.js does); ' +
                    (typeof navigator !== 'undefined' && navigator.gpu ? 'this is a page\'s main thread'
                                                                        : 'this JavaScript runtime has no WebGPU'));
  }
  if (typeof navigator === 'undefined' || !navigator.gpu) {
    throw new Error('this browser has no WebGPU (navigator.gpu is missing); load the model without {device: \'webgpu\'}');
  }
  // The module's thread waits for the device worker on a word of shared memory.
  if (typeof SharedArrayBuffer === 'undefined' || !(wasmMemory.buffer instanceof SharedArrayBuffer)) {
    throw new Error('WebGPU needs the threaded module (osprey.js) on a cross-origin isolated page, whose memory can ' +
                    'be shared with the GPU\'s worker; this is ' + (Module.maxThreads() === 1 ? 'the single-threaded module'
                                                                                   : 'a page without shared memory'));
  }
  const source = '(' + ospreyDeviceWorker.toString() + ')();';
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
  const control = new SharedArrayBuffer(8 + 4096);
  const opened = await new Promise((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.onerror = (e) => resolve({ error: 'the WebGPU device worker failed: ' + (e.message || 'no message') });
    worker.postMessage({ op: 'open', memory: wasmMemory, control });
  });
  if (opened.error) {
    worker.terminate();
    throw new Error('WebGPU: ' + opened.error);
  }
  worker.onmessage = null;
  Module.webgpuProxy = { worker, adapter: opened.adapter, maxBuffer: opened.maxBuffer, state: new Int32Array(control),
                         bytes: new Uint8Array(control) };
  return opened.adapter;
};

// One request from webgpu_device.cpp: posts it and blocks until answered.
// Returns 0, or 1 with the message written at `reply`.
Module.webgpuRequest = function (op, a, b, c, d, reply, cap) {
  const fail = (text) => { stringToUTF8(text, reply, cap); return 1; };
  const p = Module.webgpuProxy;
  if (!p) return fail('no WebGPU device is open');
  Atomics.store(p.state, 0, 0);
  p.worker.postMessage({ op, args: [a, b, c, d] });
  if (Atomics.wait(p.state, 0, 0, kDeviceAnswerMs) === 'timed-out') {
    return fail('the WebGPU device did not answer in ' + kDeviceAnswerMs / 1000 + ' s');
  }
  if (Atomics.load(p.state, 0) === 1) return 0;
  return fail(new TextDecoder().decode(p.bytes.slice(8, 8 + p.state[1])));
};
