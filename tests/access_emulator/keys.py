"""RSA signing keys with Access-style rotation: a new key signs at once, the old one stays published
in the JWKS (grace period) until it is retired."""

import base64
import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt
from jose.exceptions import JOSEError


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    # The key object, not PEM: loading a PEM re-validates the RSA key, ~50 ms per signature.
    private_key: rsa.RSAPrivateKey
    public_jwk: dict

    @classmethod
    def generate(cls, kid: str | None = None) -> "SigningKey":
        """A new key; its kid is its RFC 7638 thumbprint unless one is given."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = private.public_key().public_numbers()
        members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
        # RFC 7638 thumbprint in hex: stable per key and 64 hex digits, the shape of Access's kids.
        kid = kid or hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).hexdigest()
        return cls(kid, private, {"kid": kid, "alg": "RS256", "use": "sig", **members})

    def sign(self, claims: dict, headers: dict | None = None) -> str:
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={**(headers or {}), "kid": self.kid})


class KeyRing:
    """Published keys, oldest first; the newest one signs."""

    def __init__(self, first: SigningKey):
        self._keys = [first]

    @property
    def current(self) -> SigningKey:
        return self._keys[-1]

    def kids(self) -> list[str]:
        return [key.kid for key in self._keys]

    def rotate(self) -> SigningKey:
        self._keys.append(SigningKey.generate())
        return self.current

    def rekey(self) -> SigningKey:
        """Replaces the signing key with a new one under the same kid (an IdP that re-keys a kid
        in place: a verifier must not trust what the old key signed)."""
        self._keys[-1] = SigningKey.generate(self.current.kid)
        return self.current

    def retire_old(self) -> None:
        self._keys = [self.current]

    def jwks(self) -> dict:
        return {"keys": [key.public_jwk for key in self._keys]}

    def verify(self, token: str, issuer: str) -> dict | None:
        """Claims of a JWT signed by a published key for `issuer` and not expired, else None."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next((key for key in self._keys if key.kid == kid), None)
            if key is None:
                return None
            return jwt.decode(token, key.public_jwk, algorithms=["RS256"], issuer=issuer, options={"verify_aud": False})
        except JOSEError:
            return None
