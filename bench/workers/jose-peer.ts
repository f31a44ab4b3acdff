// The Worker a user would otherwise write: TypeScript + jose, RS256 Access JWT validation
// (issuer, audience, exp) with a per-isolate remote JWKS cache, then the same pass-through.
import { createRemoteJWKSet, jwtVerify } from "jose";

interface Env {
  ORIGIN_URL: string;
  ACCESS_ISSUER: string;
  AUDIENCE: string;
}

let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

function unauthorized(): Response {
  return new Response("unauthorized", { status: 401, headers: { "www-authenticate": 'Bearer error="invalid_token"' } });
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const auth = req.headers.get("authorization") ?? "";
    if (!auth.startsWith("Bearer ")) return unauthorized();
    jwks ??= createRemoteJWKSet(new URL(env.ACCESS_ISSUER + "/jwks"));
    try {
      await jwtVerify(auth.slice(7), jwks, {
        algorithms: ["RS256"],
        issuer: env.ACCESS_ISSUER,
        audience: env.AUDIENCE,
        requiredClaims: ["exp"],
      });
    } catch {
      return unauthorized();
    }
    return fetch(new Request(env.ORIGIN_URL + new URL(req.url).pathname, req));
  },
};
