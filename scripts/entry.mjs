// The Worker's entry module, bundled by scripts/build with wasm-bindgen's glue (./index.js is
// generated there). A plain module `fetch` export: the request goes straight to the wasm `fetch`.
import * as gateway from "./index.js";

// What Error::Internal answers; the panic itself is in the log, with where it happened.
const FAILED = JSON.stringify({ error: "server_error", error_description: "the gateway failed; try again later" });
const PANICKED = Symbol("panicked");

// A panic happens inside a future's poll, where no caller is left to catch it: the instance
// traps and every request it was serving would hang. workers-rs's panic hook sets
// `criticalError` first, so that setter settles `panicked`, which each request races against.
const state = gateway.__worker_init_state();
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
      // The common MCP request: started by a synchronous call, its origin awaited here.
      const forwarding = gateway.start_forward(request, Date.now());
      if (forwarding !== undefined) {
        let outcome;
        let failed = false;
        try {
          outcome = await forwarding.origin;
        } catch (reason) {
          outcome = reason;
          failed = true;
        }
        return forwarding.finish(outcome, failed);
      }
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
