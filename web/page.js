// The page: pick a GGUF file, chat with it in this tab. The model runs in
// worker.js on osprey's WebAssembly build; nothing is sent anywhere.
'use strict';
const $ = (id) => document.getElementById(id);
const worker = new Worker('worker.js');
const threads = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
// A flag shared with the worker, so Stop reaches it mid-reply.
const stopFlag = typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(4) : null;
const history = [];
let replyNode = null;
let busy = false;

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

if (!window.crossOriginIsolated) {
  showError('This page is not cross-origin isolated, so WebAssembly threads cannot start. Serve it with ' +
            'Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp (node web/serve.mjs does).');
}
$('device').textContent = navigator.gpu ? 'runs on WebGPU if it opens, else WebAssembly CPU (SIMD128)'
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
  if (stopFlag) Atomics.store(new Int32Array(stopFlag), 0, 1);
});

worker.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'progress') {
    $('progress-bar').value = msg.total ? msg.done / msg.total : 1;
    $('progress-text').textContent = `${(msg.done / 1048576).toFixed(0)} of ${(msg.total / 1048576).toFixed(0)} MiB`;
  } else if (msg.type === 'loaded') {
    $('progress').hidden = true;
    $('model-name').textContent = `${$('model-file').files[0].name} (${msg.info.architecture}, context ${msg.info.context})`;
    $('device').textContent = `runs on ${msg.device}` + (msg.threads ? `, ${msg.threads} threads` : '') +
                              (msg.fallback ? ` (not WebGPU: ${msg.fallback})` : '');
    document.body.dataset.device = msg.device.startsWith('WebGPU') ? 'webgpu' : 'cpu';
    $('speed').textContent = `loaded in ${msg.seconds.toFixed(1)} s`;
    history.length = 0;
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
};
worker.onerror = (e) => showError('The model worker stopped: ' + e.message);
