"""Token endpoints that clients call at run time: Google OAuth (service-account JWT bearer,
refresh token) and Azure AD (client credentials). Each answer carries a fresh token.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from .server import Request, Response, Routes, json_response

GRANTS = (
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "refresh_token",
    "client_credentials",
)


def token(request: Request) -> Response:
    form = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
    grant = form.get("grant_type", "")
    if grant not in GRANTS:
        return json_response({"error": "unsupported_grant_type"}, 400)
    if grant == GRANTS[0] and form.get("assertion", "").count(".") != 2:
        return json_response({"error": "invalid_grant", "error_description": "not a JWT"}, 400)
    answer = {
        "access_token": request.new_id("ya29.a0", 40),
        "expires_in": 3599,
        "token_type": "Bearer",
    }
    if grant == "refresh_token":
        answer["id_token"] = "eyJhbGciOiJSUzI1NiJ9." + request.new_id("", 40) + ".c2ln"
    return json_response(answer)


ROUTES: Routes = {
    ("POST", "/token"): token,
    ("POST", "/oauth2/token"): token,
    ("POST", "/{tenant}/oauth2/v2.0/token"): token,
}
