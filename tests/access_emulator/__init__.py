"""Cloudflare Access for SaaS emulator: the OIDC provider the gateway fronts, with every quirk switchable.

Run with `PYTHONPATH=tests python -m access_emulator --help` (switches: config.Config). It serves, on
127.0.0.1 only, the issuer `{base}/cdn-cgi/access/sso/oidc/{client_id}` with `/.well-known/openid-configuration`,
`/authorization`, `/token`, `/jwks` and `/userinfo` below it, and a control API on the same port:

    GET  /__emulator/config          {"config": {...}, "base_url", "issuer", "kids"}
    POST /__emulator/config          JSON patch of switches -> the same view (400 {"error"} if invalid)
    POST /__emulator/rotate-key      new key signs from now on, old one stays published -> {"kid", "kids"}
    POST /__emulator/retire-old-key  only the signing key stays published -> {"kid", "kids"}
    GET  /__emulator/stats           {"counts", "last_authorization", "last_token_request", "not_found"}
    POST /__emulator/reset           startup config and key, no codes or tokens, empty stats -> the view
    POST /__emulator/mint            {"claims": {...}} over the default access-token claims -> {"token"}
"""
