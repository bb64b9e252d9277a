// The page: pick a GGUF file, chat with it in this tab. The model runs in
// worker.js on osprey's WebAssembly build; nothing is sent anywhere.
'use strict';
const $ = (id) => document.getElementById(id);
// Served cross-origin isolated, the page runs the threaded module; otherwise
// (a plain static host) the single-threaded one, on the CPU (worker.js picks).
const isolated = window.crossOriginIsolated === true;
const threads = isolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
// A flag shared with the worker, so Stop reaches it mid-reply. Without
// shared memory, Stop ends the worker instead and loads the model again.
const stopFlag = isolated && typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(4) : null;
const history = [];
let replyNode = null;
let busy = false;
let keepHistory = false;  // a reload after Stop keeps the conversation
let worker = null;
function startWorker() {
  worker = new Worker('worker.js');
  worker.onmessage = onWorkerMessage;
  worker.onerror = (e) => showError('The model worker stopped: ' + e.message);
}

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}
function setBusy(b) {
  busy = b;
  $('send').disabled = b;
  $('prompt').disabled = b;
  $('stop').disabled = !b;
}
function addMessage(role, text) {
  const hint = document.querySelector('.hint');
  if (hint) hint.remove();
  const node = document.createElement('div');
  node.className = 'message ' + role;
  node.textContent = text;
  $('messages').append(node);
  node.scrollIntoView({ block: 'end' });
  return node;
}

$('device').textContent =
  !isolated ? 'runs on WebAssembly CPU (SIMD128), one thread: this page is not cross-origin isolated ' +
              '(served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, ' +
              'as node web/serve.mjs does, it gets threads and WebGPU)'
  : navigator.gpu ? 'runs on WebGPU if it opens, else WebAssembly CPU (SIMD128)'
  : 'runs on WebAssembly CPU (SIMD128), ' + threads + ' threads (this browser has no WebGPU)';

// Loads the picked file, on the device chosen (again when the choice changes).
function loadPicked() {
  const file = $('model-file').files[0];
  if (!file) return;
  showError('');
  document.body.dataset.ready = 'false';
  $('model-name').textContent = file.name;
  $('progress').hidden = false;
  setBusy(true);
  $('stop').disabled = true;
  worker.postMessage({ type: 'load', file, threads, stopFlag, device: $('device-choice').value });
}
$('model-file').addEventListener('change', loadPicked);
$('device-choice').addEventListener('change', () => { if (!busy) loadPicked(); });

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('prompt').value.trim();
  if (!text || busy) return;
  showError('');
  history.push({ role: 'user', content: text });
  addMessage('user', text);
  $('prompt').value = '';
  replyNode = addMessage('assistant', '');
  setBusy(true);
  worker.postMessage({ type: 'chat', messages: history, options: { maxTokens: 256, temperature: 0 } });
});
$('prompt').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    $('composer').requestSubmit();
  }
});
$('stop').addEventListener('click', () => {
  if (stopFlag) {
    Atomics.store(new Int32Array(stopFlag), 0, 1);
    return;
  }
  // A busy worker reads no messages: end it, keep the reply so far, and load
  // the model again in a new one.
  worker.terminate();
  if (replyNode) history.push({ role: 'assistant', content: replyNode.textContent });
  replyNode = null;
  keepHistory = true;
  startWorker();
  loadPicked();
  $('speed').textContent = 'stopped; loading the model again (without shared memory, Stop restarts its worker)';
});

function onWorkerMessage(event) {
  const msg = event.data;
  if (msg.type === 'progress') {
    $('progress-bar').value = msg.total ? msg.done / msg.total : 1;
    $('progress-text').textContent = `${(msg.done / 1048576).toFixed(0)} of ${(msg.total / 1048576).toFixed(0)} MiB`;
  } else if (msg.type === 'loaded') {
    $('progress').hidden = true;
    $('model-name').textContent = `${$('model-file').files[0].name} (${msg.info.architecture}, context ${msg.info.context})`;
    $('device').textContent = `runs on ${msg.device}` + (msg.threads ? `, ${msg.threads} thread${msg.threads === 1 ? '' : 's'}` : '') +
                              (isolated ? '' : ' (not cross-origin isolated: the single-threaded module, no WebGPU)') +
                              (msg.fallback ? ` (not WebGPU: ${msg.fallback})` : '');
    document.body.dataset.device = msg.device.startsWith('WebGPU') ? 'webgpu' : 'cpu';
    $('speed').textContent = `loaded in ${msg.seconds.toFixed(1)} s`;
    if (!keepHistory) history.length = 0;
    keepHistory = false;
    setBusy(false);
    document.body.dataset.ready = 'true';
  } else if (msg.type === 'piece') {
    replyNode.textContent += msg.piece;
  } else if (msg.type === 'done') {
    const r = msg.reply;
    history.push({ role: 'assistant', content: r.text });
    const tps = r.generationSeconds > 0 ? r.tokens.length / r.generationSeconds : 0;
    $('speed').textContent = `${r.tokens.length} tokens, ${tps.toFixed(1)} tokens/s; prompt ` +
                             `${r.promptTokens} tokens in ${r.promptSeconds.toFixed(2)} s; ${r.finish}`;
    document.body.dataset.replies = String(Number(document.body.dataset.replies || 0) + 1);
    setBusy(false);
  } else if (msg.type === 'error') {
    $('progress').hidden = true;
    showError(msg.message);
    if (replyNode && replyNode.textContent === '') replyNode.remove();
    replyNode = null;
    const loaded = document.body.dataset.ready === 'true';
    if (history.length && history[history.length - 1].role === 'user') history.pop();
    setBusy(false);
    if (!loaded) { $('send').disabled = true; $('prompt').disabled = true; }
  }
}
startWorker();
