// Starts `osprey serve` on a free port for a test and waits until it is ready.
// Returns { proc, port, base, log } where log() is what the server has written
// to stderr so far.
import { spawn } from "node:child_process";

export async function startServer(osprey, args, { timeoutMs = 60000 } = {}) {
  const proc = spawn(osprey, ["serve", "--port", "0", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start:\n" + log)), timeoutMs);
    proc.stderr.on("data", (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on("exit", (code) => reject(new Error(`the server exited with ${code}:\n${log}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < timeoutMs / 100; i++) {
    const r = await fetch(base + "/ready").catch(() => null);
    if (r && r.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, port, base, log: () => log };
}
