"""An owner's Ed25519 key: made, kept and used to sign canonical JSON (through `cryptography`; no curve code here).

The private key stays with the owner (a file only it can read); the consortium knows the public key, which is what the
runner verifies an approval against. Canonical JSON (sorted keys, no spaces) makes the signed bytes independent of how
a record was written out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


class SigningError(WorkbenchError, ValueError):
    """A key file that cannot be read as an owner's key; the message names the file."""


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def fingerprint(public_key: str) -> str:
    """A short, stable name of a public key (SHA-256 of its raw bytes), for logs and error messages."""
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]


def new_key(key_dir: Path, register_dir: Path, party: str) -> tuple[Path, Path]:
    """Make PARTY.key in the owner's `key_dir` (readable by the owner only) and register PARTY.pub in `register_dir`,
    where the runner looks for the key an approval must verify against; refuse to overwrite a key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path, public_path = key_dir / f"{party}{PRIVATE_SUFFIX}", register_dir / f"{party}{PUBLIC_SUFFIX}"
    if private_path.exists():
        raise SigningError(f"{private_path} already exists; an owner's key is made once (delete it first to replace it)")
    key_dir.mkdir(parents=True, exist_ok=True)
    register_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(base64.b64encode(raw).decode() + "\n")
    public_path.write_text(public_key_of(private_path) + "\n")
    return private_path, public_path


def public_key_of(private_path: Path) -> str:
    from cryptography.hazmat.primitives import serialization

    public = _private_key(private_path).public_key()
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def read_public_key(path: Path) -> str:
    """The base64 public key in PARTY.pub, checked to be 32 bytes."""
    try:
        text = path.read_text().strip()
        if len(base64.b64decode(text, validate=True)) != 32:
            raise ValueError("not 32 bytes")
    except (OSError, ValueError) as error:
        raise SigningError(f"{path}: not an Ed25519 public key written by `workbench keys new` ({error})") from None
    return text


def sign(private_path: Path, record: dict[str, Any]) -> str:
    return base64.b64encode(_private_key(private_path).sign(canonical(record))).decode()


def verify(public_key: str, record: dict[str, Any], signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(base64.b64decode(signature), canonical(record))
    except (InvalidSignature, ValueError):
        return False
    return True


def _private_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        raw = base64.b64decode(path.read_text().strip(), validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (OSError, ValueError) as error:
        raise SigningError(f"{path}: not an owner's private key written by `workbench keys new` ({error})") from None
