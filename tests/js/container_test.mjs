// deploy/Containerfile, two ways.
//   lint:  always. Parsed with dockerfile-ast and checked by dockerfile-utils,
//          then held to what the image promises: a multi-stage Debian 12
//          build, a final stage that runs `osprey serve` as a non-root user
//          with a /models volume and a /health check, no floating tags, and
//          only documented flags that osprey really has.
//   image: where podman runs. Builds the image, starts it with a model
//          mounted read-only, waits for /health, runs its HEALTHCHECK, asks for
//          one completion, then stops it and expects a clean drain. Exits 77
//          with the reason where the machine cannot (no podman, no base image,
//          no working container runtime).
// Usage: node container_test.mjs OSPREY_BINARY WORKDIR lint|image
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { DockerfileParser } from "dockerfile-ast";
import { validate } from "dockerfile-utils";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const containerfilePath = path.join(repo, "deploy/Containerfile");
const [osprey, workdir, mode] = process.argv.slice(2);
fs.mkdirSync(workdir, { recursive: true });
const text = fs.readFileSync(containerfilePath, "utf8");
const dockerfile = DockerfileParser.parse(text);
const instructions = dockerfile.getInstructions();

let failures = 0;
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
}
const skip = (why) => {
  console.log(`SKIP: ${why}`);
  process.exit(77);
};

// The instructions of the last stage, and its ENTRYPOINT as an argument list.
const froms = dockerfile.getFROMs();
const finalStage = instructions.filter((i) => i.getRange().start.line > froms.at(-1).getRange().start.line);
const only = (keyword) => {
  const found = finalStage.filter((i) => i.getKeyword() === keyword);
  assert.equal(found.length, 1, `the final stage needs one ${keyword}, has ${found.length}`);
  return found[0];
};
const jsonArgs = (inst) => {
  const strings = inst.getJSONStrings?.() ?? [];
  assert.ok(strings.length > 0, `${inst.getKeyword()} must be in exec (JSON) form, so that signals reach osprey`);
  return strings.map((s) => s.getJSONValue());
};
const argDefaults = Object.fromEntries(
  instructions.filter((i) => i.getKeyword() === "ARG").map((i) => i.getArgumentsContent().split("=")));
const resolve = (image) => image.replace(/\$\{(\w+)\}/g, (_, name) => argDefaults[name] ?? "");
const entrypoint = jsonArgs(only("ENTRYPOINT"));
const portFlag = entrypoint.indexOf("--port");
const servePort = portFlag >= 0 ? Number(entrypoint[portFlag + 1]) : 8080;

if (mode === "lint") {
  await check("dockerfile-utils finds nothing wrong", async () => {
    const diagnostics = validate(text);
    assert.deepEqual(diagnostics.map((d) => `line ${d.range.start.line + 1}: ${d.message}`), []);
  });

  await check("a multi-stage build on Debian 12, with a small final stage", async () => {
    assert.ok(froms.length >= 2, "a build stage and a runtime stage");
    assert.match(resolve(froms[0].getImage()), /debian:(12|bookworm)(\b|$)/);
    const final = resolve(froms.at(-1).getImage());
    assert.notEqual(final, resolve(froms[0].getImage()), "the runtime stage does not carry the compiler");
    // Every image named is pinned to a release: no :latest, no bare name.
    const stages = new Set(froms.map((f) => f.getBuildStage()).filter(Boolean));
    for (const f of froms) {
      const image = resolve(f.getImage());
      if (image === "scratch" || stages.has(image)) continue;
      assert.ok(f.getImageTag() || f.getImageDigest() || /:[\w.-]+$/.test(image), `${image} has no tag`);
      assert.doesNotMatch(image, /:latest$/);
    }
    // apt without recommended packages, and its lists removed in the same layer.
    for (const run of instructions.filter((i) => i.getKeyword() === "RUN")) {
      const cmd = run.getArgumentsContent();
      if (!/apt-get install/.test(cmd)) continue;
      assert.match(cmd, /--no-install-recommends/);
      assert.match(cmd, /rm -rf \/var\/lib\/apt\/lists/);
    }
  });

  await check("the final stage runs `osprey serve` as a non-root user, with /models and a health check", async () => {
    const user = only("USER").getArgumentsContent().split(":")[0];
    assert.ok(user !== "root" && user !== "0", `USER ${user}`);
    assert.equal(path.basename(entrypoint[0]), "osprey");
    assert.equal(entrypoint[1], "serve");
    assert.ok(entrypoint.includes("--host") && entrypoint[entrypoint.indexOf("--host") + 1] === "0.0.0.0",
              "listens on every interface, not only the container's loopback");
    assert.equal(Number(only("EXPOSE").getArgumentsContent()), servePort);
    assert.ok(jsonArgs(only("VOLUME")).includes("/models"));
    const health = only("HEALTHCHECK");
    const command = health.getArgumentsContent().match(/^CMD\s+(\[.*\])$/s);
    assert.ok(command, "HEALTHCHECK CMD in exec (JSON) form: the image has no shell");
    const probe = JSON.parse(command[1]);
    assert.equal(probe[0], entrypoint[0], "the check runs the same binary");
    assert.equal(probe[1], "probe");
    assert.equal(probe[2], `http://127.0.0.1:${servePort}/health`);
    const stop = finalStage.find((i) => i.getKeyword() === "STOPSIGNAL");
    assert.ok(!stop || stop.getArgumentsContent() === "SIGTERM", "osprey drains on SIGTERM");
  });

  await check("every COPY source exists and .dockerignore lets it into the build context", async () => {
    const ignore = fs.readFileSync(path.join(repo, ".dockerignore"), "utf8").split("\n")
      .map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    assert.equal(ignore[0], "*", ".dockerignore leaves out everything, then lets sources in");
    const allowed = ignore.slice(1).map((l) => l.replace(/^!/, "").replace(/\/$/, ""));
    for (const copy of instructions.filter((i) => i.getKeyword() === "COPY")) {
      if (copy.getFlags().some((f) => f.getName() === "from")) continue;
      const args = copy.getArguments().map((a) => a.getValue());
      for (const src of args.slice(0, -1)) {
        assert.ok(fs.existsSync(path.join(repo, src)), `COPY ${src}: no such file in the repository`);
        assert.ok(allowed.some((a) => src.replace(/\/$/, "") === a || src.startsWith(a + "/")), `.dockerignore leaves out ${src}`);
      }
    }
  });

  await check("the flags the Containerfile documents are flags `osprey serve` has", async () => {
    const help = execFileSync(osprey, ["serve", "--help"], { encoding: "utf8" });
    const comments = text.split("\n").filter((l) => l.startsWith("#")).join("\n");
    // The table of arguments: comment lines that start with a flag.
    const documented = [...comments.matchAll(/^#\s+((?:-\w, )?--[\w-]+)/gm)].flatMap((m) => m[1].split(", "));
    assert.ok(documented.length >= 5, `only ${documented.length} flags documented`);
    for (const f of documented) assert.match(help, new RegExp(`(^|[ ,])${f}[ ,=\\n]`, "m"), `osprey serve has no ${f}`);
    for (const f of entrypoint.filter((a) => a.startsWith("-"))) assert.ok(help.includes(f), `osprey serve has no ${f}`);
    assert.match(comments, /OSPREY_API_KEY/);
  });
} else if (mode === "image") {
  const podman = spawnSync("podman", ["--version"], { encoding: "utf8" });
  if (podman.error) skip("podman is not installed (scripts/setup.sh installs it with Debian's podman and runc)");
  const run = (args, opts = {}) => spawnSync("podman", args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });

  // The base image: pulled, or (with no registry to pull from) made with
  // debootstrap from Debian's archive, which is what the image is anyway.
  const base = argDefaults.DEBIAN_IMAGE;
  if (run(["image", "exists", base]).status !== 0 && run(["pull", "-q", base], { timeout: 120000 }).status !== 0) {
    const debootstrap = spawnSync("debootstrap", ["--version"]);
    if (debootstrap.error) skip(`cannot pull ${base} and debootstrap is not installed to make it`);
    const rootfs = path.join(workdir, "debian-rootfs");
    fs.rmSync(rootfs, { recursive: true, force: true });
    console.log(`     making ${base} with debootstrap (no registry reachable)`);
    // The mirror this machine's apt uses, which is the one it can reach.
    const sources = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]
      .map((f) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "")).join("\n");
    const mirror = sources.match(/^URIs:\s*(\S+\/debian)\/?\s*$/m)?.[1] ??
                   sources.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+bookworm\s/m)?.[1] ?? "http://deb.debian.org/debian";
    const made = spawnSync("debootstrap", ["--variant=minbase", "bookworm", rootfs, mirror],
                           { encoding: "utf8", maxBuffer: 64 << 20 });
    if (made.status !== 0) skip(`cannot pull ${base}, and debootstrap failed: ${(made.stderr || made.stdout).trim().split("\n").at(-1)}`);
    const tar = spawnSync("sh", ["-c", `tar -C '${rootfs}' -c . | podman import - '${base}'`], { encoding: "utf8" });
    fs.rmSync(rootfs, { recursive: true, force: true });
    if (tar.status !== 0) skip(`cannot import the debootstrapped ${base}: ${tar.stderr.trim()}`);
  }

  // The container runtime and limits this machine allows: the default first,
  // then runc (crun needs a cgroup layout some hosts lack), then with the
  // file and process limits lowered to what an unprivileged host grants.
  const limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"];
  const candidates = [[], limits, ["--runtime", "runc"], ["--runtime", "runc", ...limits]];
  let flags = null, lastError = "";
  for (const c of candidates) {
    const r = run(["run", "--rm", "--network", "host", ...c, base, "true"], { timeout: 60000 });
    if (r.status === 0) {
      flags = c;
      break;
    }
    lastError = (r.stderr || "").trim().split("\n").at(-1);
  }
  if (!flags) skip(`podman cannot run a container on this machine: ${lastError}`);
  console.log(`     podman runs containers here with [${flags.join(" ")}]`);

  const image = "localhost/osprey:test";
  await check("the image builds", async () => {
    const t0 = Date.now();
    // --format docker keeps HEALTHCHECK, which the OCI format has no field for.
    // The host's compiler cache, which the Release build filled: the build
    // stage then compiles only what differs (the image has no Vulkan).
    const cacheDir = spawnSync("ccache", ["-k", "cache_dir"], { encoding: "utf8" });
    const cache = cacheDir.status === 0 && fs.existsSync(cacheDir.stdout.trim()) ? ["-v", `${cacheDir.stdout.trim()}:/ccache`] : [];
    if (cache.length === 0) console.log("     no ccache on the host: the build stage compiles everything");
    // Counted from the cache's own statistics, which the build stage adds to.
    const cacheStats = () => {
      const out = spawnSync("ccache", ["--print-stats"], { encoding: "utf8" }).stdout ?? "";
      const get = (k) => Number(out.match(new RegExp(`^${k}\\t(\\d+)`, "m"))?.[1] ?? 0);
      return { hits: get("direct_cache_hit") + get("preprocessed_cache_hit"), misses: get("cache_miss") };
    };
    const before = cache.length ? cacheStats() : null;
    const r = run(["build", "--format", "docker", "--network", "host", ...flags, ...cache, "-f", containerfilePath, "-t", image, repo]);
    if (before) {
      const after = cacheStats();
      console.log(`     compiler cache: ${after.hits - before.hits} objects reused, ${after.misses - before.misses} compiled`);
    }
    assert.equal(r.status, 0, `podman build failed:\n${(r.stdout + r.stderr).split("\n").slice(-30).join("\n")}`);
    const [info] = JSON.parse(run(["image", "inspect", image]).stdout);
    console.log(`     built in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${(info.Size / 2 ** 20).toFixed(1)} MiB, ` +
                `user ${info.Config.User}, entry point ${info.Config.Entrypoint.join(" ")}`);
    assert.ok(info.Size < 64 * 2 ** 20, `the image is ${info.Size} bytes: more than the binary and its libraries`);
    assert.equal(info.Config.User, "10001:10001");
    // podman reports the health check beside Config, docker inside it.
    const healthcheck = info.Healthcheck ?? info.Config.Healthcheck;
    assert.ok(healthcheck?.Test?.join(" ").includes("/health"), "the HEALTHCHECK did not survive the build");
  });

  await check("the image serves: /health, its own health check, one completion, then a clean stop", async () => {
    const model = path.join(workdir, "models", "tiny-qwen2.gguf");
    fs.mkdirSync(path.dirname(model), { recursive: true });
    if (!fs.existsSync(model)) execFileSync(osprey, ["synth", "--preset", "tiny-qwen2", "-o", model]);
    fs.chmodSync(path.dirname(model), 0o755);
    fs.chmodSync(model, 0o644);  // the container's user is not this one
    const port = await new Promise((resolve) => {
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    const name = `osprey-test-${process.pid}`;
    // Everything after the image goes to `osprey serve`, after the entry
    // point's own flags: the later --port wins.
    const started = run(["run", "-d", "--name", name, "--network", "host", ...flags,
                         "-v", `${path.dirname(model)}:/models:ro`, image, "-m", "/models/tiny-qwen2.gguf",
                         "--port", String(port), "-t", "1"]);
    assert.equal(started.status, 0, started.stderr);
    try {
      const base = `http://127.0.0.1:${port}`;
      let ready = false;
      for (let i = 0; i < 300 && !ready; i++) {
        ready = (await fetch(base + "/ready").then((r) => r.status, () => 0)) === 200;
        if (!ready) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(ready, `not ready after 30 s:\n${run(["logs", name]).stderr}`);
      assert.equal((await fetch(base + "/health")).status, 200);
      // The HEALTHCHECK command, run inside the container (osprey probe) -
      // only on the default port, so check that the probe fails cleanly here
      // and passes when pointed at the port in use.
      const hc = run(["exec", name, "/usr/local/bin/osprey", "probe", `http://127.0.0.1:${port}/health`]);
      assert.equal(hc.status, 0, hc.stderr);
      const res = await fetch(base + "/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "Hello from a container" }], max_tokens: 8 }),
      });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(body.usage.completion_tokens > 0, true);
      const stop = run(["stop", "-t", "30", name]);
      assert.equal(stop.status, 0, stop.stderr);
      const state = JSON.parse(run(["inspect", name]).stdout)[0].State;
      const logs = run(["logs", name]);
      assert.equal(state.ExitCode, 0, logs.stderr);
      assert.match(logs.stderr + logs.stdout, /draining/);
      console.log(`     answered "${body.choices[0].message.content.slice(0, 40)}..." on port ${port}, stopped with exit code 0`);
    } finally {
      run(["rm", "-f", name]);
    }
  });
} else {
  console.log("usage: container_test.mjs OSPREY_BINARY WORKDIR lint|image");
  process.exit(2);
}
console.log(failures === 0 ? `all ${mode} checks passed` : `${failures} ${mode} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
