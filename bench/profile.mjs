// Samples a Worker's CPU with V8's profiler through workerd's inspector while load runs:
//   node profile.mjs http://127.0.0.1:<inspector port>
// prints "started" once profiling, waits for a line on stdin, then prints one JSON object:
// self time per category (wasm, JS glue, runtime builtins, GC, idle) and the top functions.
import { createInterface } from "node:readline";

const SAMPLING_INTERVAL_US = 50;
const TOP = 25;

const [inspector] = process.argv.slice(2);
const targets = await (await fetch(`${inspector}/json/list`)).json();
const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((resolve, reject) => {
  socket.onopen = resolve;
  socket.onerror = reject;
});

let nextId = 0;
const pending = new Map();
socket.onmessage = (event) => {
  const message = JSON.parse(event.data);
  if (message.id !== undefined && pending.has(message.id)) {
    pending.get(message.id)(message);
    pending.delete(message.id);
  }
};
function send(method, params = {}) {
  const id = ++nextId;
  socket.send(JSON.stringify({ id, method, params }));
  return new Promise((resolve) => pending.set(id, resolve));
}

function category(frame) {
  const { functionName: name, url } = frame;
  if (name === "(idle)" || name === "(garbage collector)" || name === "(program)") return name;
  if (url.endsWith(".wasm") || url.startsWith("wasm://")) return "wasm (the Worker's Rust)";
  if (url) return "JavaScript (" + url.split("/").pop() + ")";
  return "runtime built-ins (fetch, Headers, crypto…)";
}

await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
await send("Profiler.start");
console.log("started");

const lines = createInterface({ input: process.stdin });
for await (const _ of lines) break;

const { result } = await send("Profiler.stop");
const profile = result.profile;
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

const categories = {};
const functions = {};
let total = 0;
for (const [id, micros] of self) {
  const frame = nodes.get(id).callFrame;
  const kind = category(frame);
  categories[kind] = (categories[kind] ?? 0) + micros;
  const file = frame.url.split("/").pop();
  const where = kind.startsWith("JavaScript") ? ` @ ${file}:${frame.lineNumber + 1}:${frame.columnNumber + 1}` : "";
  const key = `${frame.functionName || "(anonymous)"}${where} — ${kind}`;
  functions[key] = (functions[key] ?? 0) + micros;
  total += micros;
}
const top = Object.entries(functions)
  .sort((a, b) => b[1] - a[1])
  .slice(0, TOP)
  .map(([name, micros]) => ({ name, us: micros }));
console.log(JSON.stringify({ total_us: total, categories_us: categories, top_self_us: top }));
socket.close();
process.exit(0);
