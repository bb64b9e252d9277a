// A small Markdown renderer for model replies: fenced and inline code,
// headings, lists, quotes, emphasis, links and paragraphs.
//
// Safety comes first: every piece of the reply is HTML-escaped before any
// markup is added, and a link is made only for http(s) and mailto addresses,
// so nothing a model writes can run script or load a resource in the page.
// It renders text that is still arriving: an unclosed ``` fence is a code
// block to the end of the text.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Inline spans of one escaped line: code first (its content stays literal),
// then links, bold and italics in the text between code spans.
function inline(text) {
  const parts = text.split(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/);
  let out = "";
  for (let i = 0; i < parts.length; i++) {
    if (i % 3 === 0) out += emphasis(escapeHtml(parts[i]));
    else if (i % 3 === 2) out += "<code>" + escapeHtml(parts[i]) + "</code>";
  }
  return out;
}

function emphasis(html) {
  return html
    .replace(/\[([^\]\n]+)\]\(((?:https?:\/\/|mailto:)[^\s()]+)\)/g,
             (_, label, href) => `<a href="${href}" target="_blank" rel="noopener noreferrer">${label}</a>`)
    .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, "<strong>$1</strong>")
    .replace(/__(?=\S)([\s\S]*?\S)__/g, "<strong>$1</strong>")
    .replace(/(^|[^*\w])\*(?=\S)([^*]*?\S)\*(?!\*)/g, "$1<em>$2</em>")
    .replace(/(^|[^_\w])_(?=\S)([^_]*?\S)_(?![_\w])/g, "$1<em>$2</em>")
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, "<del>$1</del>");
}

const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;

// Lines that are not code: grouped into headings, rules, quotes, lists and paragraphs.
function blocks(lines) {
  let out = "";
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*$/.test(line)) { i++; continue; }
    const heading = line.match(/^(#{1,6})\s+(.*?)\s*#*\s*$/);
    if (heading) {
      const level = heading[1].length;
      out += `<h${level}>${inline(heading[2])}</h${level}>`;
      i++;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) { out += "<hr>"; i++; continue; }
    if (/^\s*>/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
      out += "<blockquote>" + blocks(quoted) + "</blockquote>";
      continue;
    }
    const item = line.match(LIST_ITEM);
    if (item) {
      const ordered = /\d/.test(item[2]);
      const start = ordered ? parseInt(item[2], 10) : 1;
      let html = "";
      while (i < lines.length) {
        const m = lines[i].match(LIST_ITEM);
        if (m && /\d/.test(m[2]) === ordered) {
          html += "<li>" + inline(m[3]);
          i++;
        } else if (lines[i].trim() !== "" && /^\s+/.test(lines[i])) {
          html += "<br>" + inline(lines[i].trim());  // a continuation line of the item
          i++;
        } else {
          break;
        }
      }
      out += ordered ? `<ol${start !== 1 ? ` start="${start}"` : ""}>${html}</ol>` : `<ul>${html}</ul>`;
      continue;
    }
    const para = [];
    while (i < lines.length && !/^\s*$/.test(lines[i]) && !LIST_ITEM.test(lines[i]) && !/^(#{1,6})\s/.test(lines[i]) &&
           !/^\s*>/.test(lines[i])) {
      para.push(inline(lines[i++]));
    }
    out += "<p>" + para.join("<br>") + "</p>";
  }
  return out;
}

// The whole reply as HTML.
export function renderMarkdown(text) {
  const lines = text.split("\n");
  let out = "";
  let prose = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = lines[i].match(/^\s*(`{3,}|~{3,})\s*([\w+#.-]*)/);
    if (!fence) { prose.push(lines[i]); continue; }
    out += blocks(prose);
    prose = [];
    const code = [];
    let j = i + 1;
    while (j < lines.length && !lines[j].trim().startsWith(fence[1])) code.push(lines[j++]);
    const lang = fence[2] ? ` data-lang="${escapeHtml(fence[2])}"` : "";
    out += `<pre${lang}><code>${escapeHtml(code.join("\n"))}</code></pre>`;
    i = j;  // the closing fence, or past the end while the block is still arriving
  }
  return out + blocks(prose);
}
