"""Development sign-in without Clerk: the local stack keeps an RSA key in its state folder, services
trust it only when APP_ENV=development, and `studiox token` mints tokens with it."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.kit.auth import DEV_ISSUER, DEV_KID

DEFAULT_TTL_SECONDS = 8 * 3600


def key_paths(state_dir: Path) -> tuple[Path, Path]:
    folder = state_dir / "dev-jwt"
    return folder / "private.pem", folder / "public.pem"


def ensure_keypair(state_dir: Path) -> Path:
    """Create the dev key pair once; returns the public key's path."""
    private_path, public_path = key_paths(state_dir)
    if private_path.exists() and public_path.exists():
        return public_path
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public_path


def mint(
    state_dir: Path,
    user_id: str,
    *,
    email: str | None = None,
    name: str | None = None,
    ttl: int = DEFAULT_TTL_SECONDS,
) -> str:
    private_path, _ = key_paths(state_dir)
    if not private_path.exists():
        raise FileNotFoundError(
            f"no dev signing key in {private_path.parent}; start the stack with `make run` first"
        )
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": user_id,
        "iss": DEV_ISSUER,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
    }
    if email:
        claims["email"] = email
    if name:
        claims["name"] = name
    return jwt.encode(claims, private_path.read_text(), algorithm="RS256", headers={"kid": DEV_KID})
