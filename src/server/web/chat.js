// The chat page osprey serves at /. It talks to the server's own
// /v1/chat/completions with streaming, keeps conversations and settings in
// the browser's localStorage, and asks for the API key when the server
// answers 401. Nothing here loads from anywhere but this server.
import { escapeHtml, renderMarkdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);

// ---- What the browser keeps -------------------------------------------------

const KEYS = { conversations: "osprey.conversations", settings: "osprey.settings", apiKey: "osprey.apiKey" };
const DEFAULT_SETTINGS = { system: "", temperature: 0.7, top_p: 0.95, max_tokens: 1024, seed: "", extra: "" };

function load(key, fallback) {
  try {
    const value = JSON.parse(localStorage.getItem(key));
    return value ?? fallback;
  } catch {
    return fallback;  // storage off, or a value some other version wrote
  }
}

function save(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    setStatus("the browser would not store the conversation (storage full or disabled)");
  }
}

// Conversations with no message yet are not worth keeping.
function saveConversations() {
  save(KEYS.conversations, conversations.filter((c) => c.messages.length > 0));
}

let conversations = load(KEYS.conversations, []).filter((c) => c && Array.isArray(c.messages));
let settings = { ...DEFAULT_SETTINGS, ...load(KEYS.settings, {}) };
let apiKey = load(KEYS.apiKey, "");
let current = null;     // the conversation shown
let inFlight = null;    // the AbortController of the reply being streamed

function newConversation() {
  const c = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 6), title: "New chat", messages: [] };
  conversations.unshift(c);
  return c;
}

function setStatus(text) {
  $("status").textContent = text;
}

// ---- Talking to the server --------------------------------------------------

let keyWaiters = [];

// Shows the key form; resolves once the user has given a key.
function askForKey(message) {
  $("key-form").hidden = false;
  $("key-error").textContent = message || "";
  $("api-key").focus();
  return new Promise((resolve) => keyWaiters.push(resolve));
}

// fetch with the key; on 401 asks for one and tries again.
async function api(path, init = {}) {
  for (;;) {
    const headers = { ...(init.headers || {}) };
    if (apiKey) headers.Authorization = "Bearer " + apiKey;
    const res = await fetch(path, { ...init, headers });
    if (res.status !== 401) return res;
    await askForKey(apiKey ? "The server refused that key." : "");
  }
}

async function errorMessage(res) {
  const text = await res.text().catch(() => "");
  try {
    return JSON.parse(text).error.message;
  } catch {
    return `${res.status} ${res.statusText} ${text.slice(0, 200)}`;
  }
}

// The server-sent events of a streamed reply, each parsed from JSON, until [DONE].
async function* events(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

// The request body from the conversation and the settings.
function requestBody(messages) {
  const body = {
    model: $("model-name").textContent,
    messages: [],
    stream: true,
    stream_options: { include_usage: true },
  };
  if (settings.system.trim()) body.messages.push({ role: "system", content: settings.system });
  // A reply that failed is shown, not sent back as if the model had said it.
  for (const m of messages) if (!m.error) body.messages.push({ role: m.role, content: m.content });
  const number = (v) => (v === "" || v === null || v === undefined ? null : Number(v));
  if (number(settings.temperature) !== null) body.temperature = number(settings.temperature);
  if (number(settings.top_p) !== null) body.top_p = number(settings.top_p);
  if (number(settings.max_tokens) !== null) body.max_tokens = number(settings.max_tokens);
  if (number(settings.seed) !== null) body.seed = number(settings.seed);
  if (settings.extra.trim()) Object.assign(body, JSON.parse(settings.extra));
  return body;
}

// ---- Drawing ----------------------------------------------------------------

function statsText(stats) {
  if (!stats) return "";
  const parts = [];
  if (stats.ttft !== undefined) parts.push(`first token ${(stats.ttft / 1000).toFixed(2)} s`);
  if (stats.tokens !== undefined) parts.push(`${stats.tokens}${stats.estimated ? "≈" : ""} tokens`);
  if (stats.tps !== undefined) parts.push(`${stats.tps.toFixed(1)} tokens/s`);
  if (stats.stopped) parts.push("stopped");
  if (stats.finish && stats.finish !== "stop") parts.push(`finish: ${stats.finish}`);
  return parts.join(" · ");
}

function drawMessage(m) {
  const el = document.createElement("div");
  el.className = `message ${m.role}` + (m.error ? " failed" : "");
  el.innerHTML = `<div class="role">${escapeHtml(m.role)}</div>`;
  const reasoning = document.createElement("details");
  reasoning.innerHTML = "<summary>reasoning</summary><div class=\"reasoning\"></div>";
  const content = document.createElement("div");
  content.className = "content";
  const stats = document.createElement("div");
  stats.className = "stats";
  el.append(reasoning, content, stats);
  const update = () => {
    el.classList.toggle("failed", Boolean(m.error));
    reasoning.hidden = !m.reasoning;
    reasoning.querySelector(".reasoning").textContent = m.reasoning || "";
    if (m.error) content.textContent = m.error;
    else if (m.role === "assistant") content.innerHTML = renderMarkdown(m.content);
    else content.textContent = m.content;
    stats.textContent = statsText(m.stats);
  };
  update();
  $("messages").append(el);
  return update;
}

function drawConversation() {
  $("messages").replaceChildren();
  for (const m of current.messages) drawMessage(m);
  $("messages").scrollTop = $("messages").scrollHeight;
  drawSidebar();
}

function drawSidebar() {
  const list = $("conversations");
  list.replaceChildren();
  for (const c of conversations) {
    const li = document.createElement("li");
    if (c === current) li.className = "current";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.textContent = c.title;
    open.title = c.title;
    open.onclick = () => {
      if (inFlight) return;
      current = c;
      drawConversation();
    };
    const del = document.createElement("button");
    del.type = "button";
    del.className = "delete";
    del.textContent = "×";
    del.title = "Delete this conversation";
    del.onclick = () => {
      if (inFlight && c === current) return;
      conversations = conversations.filter((x) => x !== c);
      if (c === current) current = conversations[0] || newConversation();
      saveConversations();
      drawConversation();
    };
    li.append(open, del);
    list.append(li);
  }
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
}

// ---- Sending a message ------------------------------------------------------

async function send(text) {
  let body;
  try {
    body = requestBody([...current.messages, { role: "user", content: text }]);
  } catch (e) {
    $("settings").hidden = false;
    $("settings-error").textContent = "Extra request fields are not a JSON object: " + e.message;
    return;
  }
  current.messages.push({ role: "user", content: text });
  if (current.title === "New chat") current.title = text.slice(0, 40);
  drawMessage(current.messages.at(-1));
  const reply = { role: "assistant", content: "", reasoning: "", stats: {} };
  current.messages.push(reply);
  const redraw = drawMessage(reply);
  drawSidebar();
  const scroll = () => ($("messages").scrollTop = $("messages").scrollHeight);
  scroll();

  inFlight = new AbortController();
  setBusy(true);
  setStatus("generating…");
  const start = performance.now();
  let first = null, chunks = 0, usage = null, finish = null;
  let pending = false;
  const schedule = () => {  // at most one redraw per frame, however fast tokens come
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      redraw();
      scroll();
    });
  };
  try {
    const res = await api("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: inFlight.signal,
    });
    if (!res.ok) throw new Error(await errorMessage(res));
    for await (const chunk of events(res)) {
      if (chunk.error) throw new Error(chunk.error.message || JSON.stringify(chunk.error));
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices || []) {
        const d = choice.delta || {};
        if (d.content || d.reasoning_content) {
          if (first === null) first = performance.now();
          chunks++;
          reply.content += d.content || "";
          reply.reasoning += d.reasoning_content || "";
          schedule();
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
  } catch (e) {
    if (e.name === "AbortError") reply.stats.stopped = true;
    else reply.error = "Error: " + e.message;
  }
  const end = performance.now();
  if (first !== null) {
    reply.stats.ttft = first - start;
    // Without usage (a stopped reply) each streamed delta counts as a token.
    const tokens = usage ? usage.completion_tokens : chunks;
    reply.stats.tokens = tokens;
    reply.stats.estimated = !usage;
    if (tokens > 1 && end > first) reply.stats.tps = ((tokens - 1) * 1000) / (end - first);
  }
  reply.stats.finish = finish;
  inFlight = null;
  setBusy(false);
  setStatus("");
  redraw();
  scroll();
  saveConversations();
}

// ---- Wiring -----------------------------------------------------------------

function bindSettings() {
  const fields = { "system-prompt": "system", temperature: "temperature", "top-p": "top_p",
                   "max-tokens": "max_tokens", seed: "seed", "extra-fields": "extra" };
  for (const [id, name] of Object.entries(fields)) {
    $(id).value = settings[name];
    $(id).addEventListener("input", () => {
      settings[name] = $(id).value;
      $("settings-error").textContent = "";
      save(KEYS.settings, settings);
    });
  }
  $("settings-toggle").onclick = () => {
    $("settings").hidden = !$("settings").hidden;
    $("settings-toggle").setAttribute("aria-expanded", String(!$("settings").hidden));
  };
  $("forget-key").onclick = () => {
    apiKey = "";
    try { localStorage.removeItem(KEYS.apiKey); } catch { /* storage off */ }
    setStatus("API key forgotten");
  };
}

function bindKeyForm() {
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    apiKey = $("api-key").value.trim();
    if (!apiKey) return;
    save(KEYS.apiKey, apiKey);
    $("api-key").value = "";
    $("key-form").hidden = true;
    const waiters = keyWaiters;
    keyWaiters = [];
    for (const w of waiters) w();
  });
}

function bindComposer() {
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("prompt").value;
    if (!text.trim() || inFlight) return;
    $("prompt").value = "";
    send(text);
  });
  $("prompt").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").onclick = () => inFlight && inFlight.abort();
  $("new-chat").onclick = () => {
    if (inFlight) return;
    current = current.messages.length ? newConversation() : current;
    drawConversation();
    $("prompt").focus();
  };
}

async function start() {
  bindSettings();
  bindKeyForm();
  bindComposer();
  current = conversations[0] && conversations[0].messages.length === 0 ? conversations[0] : newConversation();
  drawConversation();
  try {
    const res = await api("/v1/models");
    if (res.ok) {
      const list = await res.json();
      if (list.data && list.data[0]) $("model-name").textContent = list.data[0].id;
    } else {
      setStatus(await errorMessage(res));
    }
  } catch (e) {
    setStatus("the server cannot be reached: " + e.message);
  }
  document.body.dataset.ready = "true";  // for tests and scripts that drive the page
}

start();
