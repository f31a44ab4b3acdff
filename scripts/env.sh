# Sourced by the other scripts: the project's own tool paths, nothing global.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"   # Node 22 and wrangler from package.json
export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"       # installed by scripts/setup from the Rust crates
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"         # npm binaryen (scripts/build runs it)
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
export PYTHON="$ROOT/.venv/bin/python"
