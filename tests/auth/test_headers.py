"""Security headers on every response, without breaking the API documentation page."""

from __future__ import annotations


async def test_security_headers(auth_app):
    async with auth_app(users=False) as env:
        responses = [
            await env.client.get("/health/live"),
            await env.client.get("/docs"),
            await env.client.get("/static/kernel/docs.js"),
            await env.client.get("/api/v1/auth/me"),
            await env.client.get("/no/such/page"),
        ]
        https = await env.client.get("https://testserver/health/live")
    docs_csp = responses[1].headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs_csp and "script-src 'self'" in docs_csp
    assert "style-src 'self' 'unsafe-inline'" in docs_csp  # Swagger UI styles itself inline
    assert "'unsafe-inline'" not in docs_csp.split("script-src")[1].split(";")[0]
    assert responses[1].headers["cross-origin-opener-policy"] == "same-origin"
    for response in (responses[0], responses[3], responses[4]):  # JSON answers and problems load nothing
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    for response in responses:
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers
    assert https.headers["strict-transport-security"].startswith("max-age=31536000")
    docs = responses[1].text
    assert "<script>" not in docs and "/static/kernel/docs.js" in docs  # no inline script for CSP to block


async def test_configured_policy(auth_app):
    async with auth_app(users=False, content_security_policy="default-src 'self'", hsts_seconds=0) as env:
        docs = await env.client.get("/docs")
        https = await env.client.get("https://testserver/docs")
    assert docs.headers["content-security-policy"] == "default-src 'self'"
    assert "strict-transport-security" not in https.headers
