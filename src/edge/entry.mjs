// The Worker's entry module, bundled by scripts/build with wasm-bindgen's glue (./index.js is
// generated there). A plain module `fetch` export: an MCP request that can is driven through
// the synchronous path (src/edge/forward.rs), everything else goes straight to the wasm `fetch`.
import * as gateway from "./index.js";

// What Error::Internal answers; the panic itself is in the log, with where it happened.
const FAILED = JSON.stringify({ error: "server_error", error_description: "the gateway failed; try again later" });
const PANICKED = Symbol("panicked");

// A panic happens inside a future's poll, where no caller is left to catch it: the instance
// traps and every request it was serving would hang. workers-rs's panic hook sets
// `criticalError` first, so that setter settles `panicked`, which each request races against.
const state = gateway.__worker_init_state();
// Constants of the wasm, read once: the rate limiter's binding name, and the most of a JSON
// list answer the entry reads for the filter.
const RATE_LIMITER = gateway.rate_limiter_binding();
const LIST_ANSWER_LIMIT = gateway.list_answer_limit();
let broken = false;
let panicked;
let reportPanic;
const arm = () => {
  panicked = new Promise((resolve) => {
    reportPanic = () => resolve(PANICKED);
  });
};
arm();
Object.defineProperty(state, "criticalError", {
  get: () => broken,
  set: (value) => {
    broken = Boolean(value);
    if (broken) reportPanic();
  },
});

export default {
  async fetch(request, env, ctx) {
    if (broken) {
      // A trapped instance's memory cannot be trusted: later requests get a fresh one.
      console.error("replacing the wasm instance after a panic");
      gateway.__wbg_reset_state();
      broken = false;
      arm();
    }
    try {
      // An MCP request started by a synchronous call, every await of it done here.
      const forwarding = gateway.start_forward(request, Date.now());
      if (forwarding !== undefined) return await forward(forwarding, request, env);
      const response = await Promise.race([gateway.fetch(request, env, ctx), panicked]);
      if (response !== PANICKED) return response;
    } catch (error) {
      // A trap without a panic (e.g. out of memory) leaves the instance just as broken.
      if (error instanceof WebAssembly.RuntimeError) state.criticalError = true;
      console.error("request failed:", String(error));
    }
    return new Response(FAILED, { status: 500, headers: { "content-type": "application/json" } });
  },
};

// The steps Forwarding.steps asks the entry for (src/edge/forward.rs has the same bits).
const VERIFY = 1;
const READ = 2;
const LIMIT = 4;

// The synchronous path's awaits, in the order Forwarding (src/edge/forward.rs) asks for them:
// the signature of a token not seen before, the body a setting reads, the rate limiter, the
// origin, and a JSON list answer read whole. Each step that refuses returns the answer.
async function forward(forwarding, request, env) {
  try {
    const steps = forwarding.steps;
    if (steps & VERIFY) {
      const valid = await forwarding.verify().then(Boolean, () => false);
      const refused = forwarding.verified(valid);
      if (refused !== undefined) return refused;
    }
    let body = null;
    if (steps & READ) {
      body = await request.arrayBuffer().then((read) => new Uint8Array(read), () => undefined);
      const refused = forwarding.read(body);
      if (refused !== undefined) return refused;
    }
    if (steps & LIMIT) {
      const limiter = env[RATE_LIMITER];
      for (const key of forwarding.rate_limit_keys()) {
        // Only an explicit refusal counts: the limiter guards capacity, not access.
        const outcome = await limiter.limit({ key }).catch(() => undefined);
        if (outcome?.success === false) return forwarding.rate_limited();
      }
    }
    let outcome;
    let failed = false;
    try {
      outcome = await forwarding.send(body);
    } catch (reason) {
      outcome = reason;
      failed = true;
    }
    const answer = forwarding.answer(outcome, failed);
    if (answer !== undefined) return answer;
    return forwarding.filtered(outcome, await bytesOf(outcome, LIST_ANSWER_LIMIT));
  } finally {
    forwarding.free();
  }
}

// A body read whole, if it is no larger than `limit` (counted as it arrives when no length is
// declared); undefined when it is larger or cannot be read.
async function bytesOf(message, limit) {
  const declared = message.headers.get("content-length");
  try {
    if (declared !== null) {
      return Number(declared) <= limit ? new Uint8Array(await message.arrayBuffer()) : undefined;
    }
    const parts = [];
    let size = 0;
    const reader = message.body.getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      size += read.value.byteLength;
      if (size > limit) {
        reader.cancel();
        return undefined;
      }
      parts.push(read.value);
    }
    const whole = new Uint8Array(size);
    let at = 0;
    for (const part of parts) {
      whole.set(part, at);
      at += part.byteLength;
    }
    return whole;
  } catch {
    return undefined;
  }
}
