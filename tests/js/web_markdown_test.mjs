// The chat page's Markdown renderer (src/server/web/markdown.js): what it
// draws, and that nothing a model writes becomes markup, script or a link
// to anything but http(s)/mailto.
// Usage: node web_markdown_test.mjs SRC_SERVER_WEB_DIR
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const dir = process.argv[2];
const source = fs.readFileSync(path.join(dir, "markdown.js"), "utf8");
// The page's scripts are browser modules; a data: URL imports one without a package.json.
const { renderMarkdown, escapeHtml } = await import("data:text/javascript," + encodeURIComponent(source));

let failed = 0;
function check(name, fn) {
  try {
    fn();
    console.log("ok   " + name);
  } catch (e) {
    failed++;
    console.log("FAIL " + name + "\n" + e.message);
  }
}

// Every tag the renderer may produce; anything else in the output came from the input.
const ALLOWED = new Set(["p", "br", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "blockquote", "ul", "ol", "li", "pre",
                         "code", "strong", "em", "del", "a"]);
function assertOnlyOwnMarkup(html) {
  for (const m of html.matchAll(/<\/?([a-zA-Z0-9]+)([^>]*)>/g)) {
    assert.ok(ALLOWED.has(m[1].toLowerCase()), `unexpected tag <${m[1]}> in ${html}`);
    const attrs = m[2];
    for (const a of attrs.matchAll(/\s([a-zA-Z-]+)=/g))
      assert.ok(["href", "target", "rel", "start", "data-lang"].includes(a[1]), `unexpected attribute ${a[1]} in ${html}`);
    const href = attrs.match(/href="([^"]*)"/);
    if (href) assert.match(href[1], /^(https?:\/\/|mailto:)/, `link to ${href[1]}`);
  }
}

check("paragraphs, line breaks, emphasis, strike-through", () => {
  assert.equal(renderMarkdown("one\ntwo\n\nthree"), "<p>one<br>two</p><p>three</p>");
  assert.equal(renderMarkdown("**bold** and *it* and _it2_ and ~~gone~~"),
               "<p><strong>bold</strong> and <em>it</em> and <em>it2</em> and <del>gone</del></p>");
  assert.equal(renderMarkdown("2 * 3 * 4 and snake_case_name"), "<p>2 * 3 * 4 and snake_case_name</p>");
});

check("headings, rules, quotes", () => {
  assert.equal(renderMarkdown("# Title\n## Sub ##\n---\n> quoted *x*\n> more"),
               "<h1>Title</h1><h2>Sub</h2><hr><blockquote><p>quoted <em>x</em><br>more</p></blockquote>");
});

check("lists, ordered with a start, and continuation lines", () => {
  assert.equal(renderMarkdown("- a\n- b\n  still b\n\n3. c\n4. d"),
               '<ul><li>a<li>b<br>still b</ul><ol start="3"><li>c<li>d</ol>');
});

check("fenced code keeps its text literally, with its language", () => {
  const html = renderMarkdown("Look:\n```cpp\nint a = b < c && d > e; // *not* emphasis\n```\nafter");
  assert.equal(html, '<p>Look:</p><pre data-lang="cpp"><code>int a = b &lt; c &amp;&amp; d &gt; e; // *not* emphasis</code></pre><p>after</p>');
});

check("a fence still arriving is code to the end", () => {
  assert.equal(renderMarkdown("```py\nprint(1)\nif x:"), '<pre data-lang="py"><code>print(1)\nif x:</code></pre>');
  assert.equal(renderMarkdown("~~~\nx\n~~~"), "<pre><code>x</code></pre>");
});

check("inline code is literal", () => {
  assert.equal(renderMarkdown("use `a*b*c` and ``x ` y``"), "<p>use <code>a*b*c</code> and <code>x ` y</code></p>");
  assert.equal(renderMarkdown("`<b>`"), "<p><code>&lt;b&gt;</code></p>");
});

check("links only to http(s) and mailto", () => {
  assert.equal(renderMarkdown("[docs](https://example.com/a?b=1&c=2)"),
               '<p><a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">docs</a></p>');
  assert.equal(renderMarkdown("[x](javascript:alert(1))"), "<p>[x](javascript:alert(1))</p>");
  assert.equal(renderMarkdown("[x](data:text/html,hi)"), "<p>[x](data:text/html,hi)</p>");
});

check("hostile replies stay text", () => {
  const hostile = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '[a](https://x.com" onmouseover="alert(1))',
    "[a](https://x.com'onmouseover='alert(1))",
    "**<svg onload=alert(1)>**",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "```\"><img src=x onerror=alert(1)>\ncode\n```",
    "> <iframe src=javascript:alert(1)>",
    "- <a href=javascript:alert(1)>x</a>",
    "`</code><script>x</script>`",
    "# <style>body{display:none}</style>",
  ];
  for (const h of hostile) {
    const html = renderMarkdown(h);
    assertOnlyOwnMarkup(html);
    assert.ok(!/<(script|img|svg|iframe|style)/i.test(html), html);
  }
});

check("escapeHtml escapes every character that matters in text and attributes", () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
});

check("random text never yields foreign markup and never throws", () => {
  const alphabet = ["<", ">", "&", '"', "'", "*", "_", "`", "~", "#", "-", "[", "]", "(", ")", "\n", " ", "a", "1.",
                    "https://", "javascript:", "```", "> ", "- ", "script", "on", "="];
  let seed = 12345;
  const rand = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
  for (let i = 0; i < 3000; i++) {
    let text = "";
    const len = rand(40);
    for (let j = 0; j < len; j++) text += alphabet[rand(alphabet.length)];
    const html = renderMarkdown(text);
    assertOnlyOwnMarkup(html);
  }
});

if (failed) {
  console.log(`${failed} failed`);
  process.exit(1);
}
